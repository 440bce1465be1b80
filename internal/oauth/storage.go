package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// Session is what a token carries: the account and client it was issued
// to, and expiry times. It implements fosite.Session.
type Session struct {
	AccountID string
	ClientID  string
	ExpiresAt map[fosite.TokenType]time.Time
}

// SetExpiresAt implements fosite.Session.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = map[fosite.TokenType]time.Time{}
	}
	s.ExpiresAt[key] = exp
}

// GetExpiresAt implements fosite.Session.
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time { return s.ExpiresAt[key] }

// GetUsername implements fosite.Session.
func (s *Session) GetUsername() string { return "" }

// GetSubject implements fosite.Session.
func (s *Session) GetSubject() string { return s.ClientID }

// Clone implements fosite.Session.
func (s *Session) Clone() fosite.Session {
	c := *s
	c.ExpiresAt = map[fosite.TokenType]time.Time{}
	for k, v := range s.ExpiresAt {
		c.ExpiresAt[k] = v
	}
	return &c
}

// storage implements the fosite storage interfaces over the store. Only
// the client credentials grant is enabled, so authorization codes and
// refresh tokens are refused.
type storage struct {
	db      *store.Store
	clients auth.ClientLookup
	ttl     func(ctx context.Context, accountID string) time.Duration
}

var errUnsupported = errors.New("oauth: not supported")

// client is an API client as fosite sees it.
type client struct {
	cred auth.ClientCredential
	ttl  time.Duration
}

func (c *client) GetID() string                      { return c.cred.ID }
func (c *client) GetHashedSecret() []byte            { return c.cred.SecretHash }
func (c *client) GetRedirectURIs() []string          { return nil }
func (c *client) GetGrantTypes() fosite.Arguments    { return fosite.Arguments{"client_credentials"} }
func (c *client) GetResponseTypes() fosite.Arguments { return nil }
func (c *client) GetScopes() fosite.Arguments        { return c.cred.Scopes }
func (c *client) IsPublic() bool                     { return false }
func (c *client) GetAudience() fosite.Arguments      { return nil }

// GetEffectiveLifespan implements fosite.ClientWithCustomTokenLifespans:
// access tokens live as long as the account's policy says.
func (c *client) GetEffectiveLifespan(gt fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	if tt == fosite.AccessToken && c.ttl > 0 {
		return c.ttl
	}
	return fallback
}

// GetClient implements fosite.ClientManager. Revoked clients and clients
// of inactive accounts do not exist for the token endpoint.
func (s *storage) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	cred, err := s.clients.ClientCredential(ctx, id)
	if err != nil || cred.Revoked || !cred.AccountActive {
		return nil, fosite.ErrNotFound
	}
	return &client{cred: cred, ttl: s.ttl(ctx, cred.AccountID)}, nil
}

func (s *storage) ClientAssertionJWTValid(context.Context, string) error { return errUnsupported }
func (s *storage) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errUnsupported
}

func (s *storage) CreateAuthorizeCodeSession(context.Context, string, fosite.Requester) error {
	return errUnsupported
}
func (s *storage) GetAuthorizeCodeSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}
func (s *storage) InvalidateAuthorizeCodeSession(context.Context, string) error {
	return errUnsupported
}

func (s *storage) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.create(ctx, "access", signature, r)
}

func (s *storage) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, "access", signature, session)
}

func (s *storage) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	_, err := s.db.Writer().Exec(ctx, "DELETE FROM oauth_tokens WHERE signature = $1 AND kind = 'access'", signature)
	return err
}

func (s *storage) CreateRefreshTokenSession(context.Context, string, string, fosite.Requester) error {
	return errUnsupported
}
func (s *storage) GetRefreshTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}
func (s *storage) DeleteRefreshTokenSession(context.Context, string) error { return nil }
func (s *storage) RotateRefreshToken(context.Context, string, string) error {
	return errUnsupported
}
func (s *storage) RevokeRefreshToken(context.Context, string) error { return nil }
func (s *storage) RevokeRefreshTokenMaybeGracePeriod(context.Context, string, string) error {
	return nil
}

// RevokeAccessToken implements RFC 7009 for access tokens: every token of
// the request is deactivated.
func (s *storage) RevokeAccessToken(ctx context.Context, requestID string) error {
	_, err := s.db.Writer().Exec(ctx, "UPDATE oauth_tokens SET active = $1 WHERE request_id = $2", false, requestID)
	return err
}

func (s *storage) create(ctx context.Context, kind, signature string, r fosite.Requester) error {
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return fmt.Errorf("oauth: unexpected session type %T", r.GetSession())
	}
	cl, ok := r.GetClient().(*client)
	if !ok {
		return fmt.Errorf("oauth: unexpected client type %T", r.GetClient())
	}
	sess.AccountID, sess.ClientID = cl.cred.AccountID, cl.cred.ID
	expires := sess.GetExpiresAt(fosite.AccessToken)
	_, err := s.db.Writer().Exec(ctx, `INSERT INTO oauth_tokens (signature, kind, request_id, account_id, client_id,
		requested_at, expires_at, scopes, granted_scopes, subject, active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		signature, kind, r.GetID(), cl.cred.AccountID, cl.cred.ID, store.Micros(r.GetRequestedAt()), store.Micros(expires),
		strings.Join(r.GetRequestedScopes(), " "), strings.Join(r.GetGrantedScopes(), " "), sess.GetSubject(), true)
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

func (s *storage) get(ctx context.Context, kind, signature string, session fosite.Session) (fosite.Requester, error) {
	var requestID, accountID, clientID, scopes, granted, subject string
	var requestedAt, expiresAt int64
	var active bool
	err := s.db.Reader().QueryRow(ctx, `SELECT request_id, account_id, client_id, requested_at, expires_at, scopes,
		granted_scopes, subject, active FROM oauth_tokens WHERE signature = $1 AND kind = $2`, signature, kind).
		Scan(&requestID, &accountID, &clientID, &requestedAt, &expiresAt, &scopes, &granted, &subject, &active)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load token: %w", err)
	}
	cl, err := s.GetClient(ctx, clientID)
	if err != nil {
		return nil, fosite.ErrNotFound // the client was revoked: so are its tokens
	}
	sess, ok := session.(*Session)
	if !ok || sess == nil {
		sess = &Session{}
	}
	sess.AccountID, sess.ClientID = accountID, clientID
	sess.SetExpiresAt(fosite.AccessToken, store.FromMicros(expiresAt))
	req := &fosite.Request{
		ID:             requestID,
		RequestedAt:    store.FromMicros(requestedAt),
		Client:         cl,
		RequestedScope: strings.Fields(scopes),
		GrantedScope:   strings.Fields(granted),
		Form:           url.Values{},
		Session:        sess,
	}
	if !active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

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
	"github.com/sealpost/sealpost/internal/login"
	"github.com/sealpost/sealpost/internal/store"
)

// Session is what a token carries: the account and client it was issued
// to, the user for the password grant, and expiry times. It implements
// fosite.Session.
type Session struct {
	AccountID string
	ClientID  string
	// UserID is set on tokens of the password grant.
	UserID    string
	ExpiresAt map[fosite.TokenType]time.Time
}

// SetSubject records the user the password grant authenticated.
func (s *Session) SetSubject(subject string) { s.UserID = subject }

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

// GetSubject implements fosite.Session: the user, else the client.
func (s *Session) GetSubject() string {
	if s.UserID != "" {
		return s.UserID
	}
	return s.ClientID
}

// Clone implements fosite.Session.
func (s *Session) Clone() fosite.Session {
	c := *s
	c.ExpiresAt = map[fosite.TokenType]time.Time{}
	for k, v := range s.ExpiresAt {
		c.ExpiresAt[k] = v
	}
	return &c
}

// storage implements the fosite storage interfaces over the store.
// Authorization codes are refused: there is no authorization endpoint.
type storage struct {
	db       *store.Store
	clients  auth.ClientLookup
	policies auth.PolicyLookup
	logins   *login.Service
	now      func() time.Time
	// passwordGrant is false when the server was built without users.
	passwordGrant bool
}

var errUnsupported = errors.New("oauth: not supported")

// client is an API client as fosite sees it, with its account's policy.
type client struct {
	cred   auth.ClientCredential
	policy auth.Policy
	// password: the client may use the password and refresh grants.
	password bool
}

func (c *client) GetID() string             { return c.cred.ID }
func (c *client) GetHashedSecret() []byte   { return c.cred.SecretHash }
func (c *client) GetRedirectURIs() []string { return nil }

// GetGrantTypes implements fosite.Client: the password grant (and the
// refresh tokens only it issues) for first-party clients of accounts
// that turned it on; fosite answers unauthorized_client otherwise.
func (c *client) GetGrantTypes() fosite.Arguments {
	if c.password {
		return fosite.Arguments{"client_credentials", "password", "refresh_token"}
	}
	return fosite.Arguments{"client_credentials"}
}
func (c *client) GetResponseTypes() fosite.Arguments { return nil }
func (c *client) GetScopes() fosite.Arguments        { return c.cred.Scopes }
func (c *client) IsPublic() bool                     { return false }
func (c *client) GetAudience() fosite.Arguments      { return nil }

// GetEffectiveLifespan implements fosite.ClientWithCustomTokenLifespans:
// access tokens live as long as the account's policy says.
func (c *client) GetEffectiveLifespan(gt fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	if tt == fosite.AccessToken && c.policy.TokenTTL > 0 {
		return c.policy.TokenTTL
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
	policy, err := s.policies.AuthPolicy(ctx, cred.AccountID)
	if err != nil {
		return nil, err
	}
	return &client{cred: cred, policy: policy,
		password: s.passwordGrant && cred.FirstParty && policy.AllowPasswordGrant}, nil
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

func (s *storage) CreateRefreshTokenSession(ctx context.Context, signature, _ string, r fosite.Requester) error {
	return s.create(ctx, "refresh", signature, r)
}

// GetRefreshTokenSession returns a refresh token's request. A token
// rotated less than RefreshGrace ago still counts as active (two refreshes
// racing with one token both succeed); an older rotated one, or a revoked
// one, is fosite.ErrInactiveToken, which makes fosite revoke the family.
func (s *storage) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, "refresh", signature, session)
}

// DeleteRefreshTokenSession is called on reuse; the row stays, inactive,
// as the record of the family, and RevokeRefreshToken follows.
func (s *storage) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	_, err := s.db.Writer().Exec(ctx, "UPDATE oauth_tokens SET active = $1, revoked = $2 WHERE signature = $3 AND kind = 'refresh'",
		false, true, signature)
	return err
}

// RotateRefreshToken retires the used refresh token; its rotation time
// starts the grace period (a second rotation keeps the first time).
// Access tokens already issued run out on their own (at most an hour).
func (s *storage) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	_, err := s.db.Writer().Exec(ctx, `UPDATE oauth_tokens SET active = $1, rotated_at = COALESCE(rotated_at, $2)
		WHERE signature = $3 AND kind = 'refresh' AND request_id = $4`, false, store.Micros(s.now()), signature, requestID)
	return err
}

// RevokeRefreshToken revokes every refresh token of the family (RFC 7009
// §2.1, and reuse detection).
func (s *storage) RevokeRefreshToken(ctx context.Context, requestID string) error {
	_, err := s.db.Writer().Exec(ctx, "UPDATE oauth_tokens SET active = $1, revoked = $2 WHERE request_id = $3 AND kind = 'refresh'",
		false, true, requestID)
	return err
}

// RevokeRefreshTokenMaybeGracePeriod implements fosite's revocation hook
// for refresh tokens: revocation is immediate.
func (s *storage) RevokeRefreshTokenMaybeGracePeriod(ctx context.Context, requestID, _ string) error {
	return s.RevokeRefreshToken(ctx, requestID)
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
	expires := sess.GetExpiresAt(tokenType(kind))
	_, err := s.db.Writer().Exec(ctx, `INSERT INTO oauth_tokens (signature, kind, request_id, account_id, client_id,
		requested_at, expires_at, scopes, granted_scopes, subject, active, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		signature, kind, r.GetID(), cl.cred.AccountID, cl.cred.ID, store.Micros(r.GetRequestedAt()), store.Micros(expires),
		strings.Join(r.GetRequestedScopes(), " "), strings.Join(r.GetGrantedScopes(), " "), sess.GetSubject(), true, sess.UserID)
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

func (s *storage) get(ctx context.Context, kind, signature string, session fosite.Session) (fosite.Requester, error) {
	var requestID, accountID, clientID, scopes, granted, subject, userID string
	var requestedAt, expiresAt, rotatedAt int64
	var active, revoked bool
	err := s.db.Reader().QueryRow(ctx, `SELECT request_id, account_id, client_id, requested_at, expires_at, scopes,
		granted_scopes, subject, active, user_id, COALESCE(rotated_at, 0), revoked FROM oauth_tokens WHERE signature = $1 AND kind = $2`,
		signature, kind).Scan(&requestID, &accountID, &clientID, &requestedAt, &expiresAt, &scopes, &granted, &subject, &active,
		&userID, &rotatedAt, &revoked)
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
	sess.AccountID, sess.ClientID, sess.UserID = accountID, clientID, userID
	sess.SetExpiresAt(tokenType(kind), store.FromMicros(expiresAt))
	req := &fosite.Request{
		ID:             requestID,
		RequestedAt:    store.FromMicros(requestedAt),
		Client:         cl,
		RequestedScope: strings.Fields(scopes),
		GrantedScope:   strings.Fields(granted),
		Form:           url.Values{},
		Session:        sess,
	}
	inGrace := kind == "refresh" && !revoked && rotatedAt != 0 && s.now().Sub(store.FromMicros(rotatedAt)) < RefreshGrace
	if !active && !inGrace {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// tokenType maps a stored kind to fosite's token type.
func tokenType(kind string) fosite.TokenType {
	if kind == "refresh" {
		return fosite.RefreshToken
	}
	return fosite.AccessToken
}

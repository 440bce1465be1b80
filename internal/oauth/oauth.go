// Package oauth is Sealpost's OAuth 2.0 authorization server on
// github.com/ory/fosite: the client credentials grant (RFC 6749 §4.4) at
// /oauth2/token, revocation (RFC 7009) at /oauth2/revoke and introspection
// (RFC 7662) at /oauth2/introspect, with opaque access tokens stored only
// as HMAC signatures, lifetimes from the account's auth policy, scopes
// bounded by the client's, and bearer verification for the API. The
// password grant and refresh tokens are not enabled yet.
package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/login"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Server issues, revokes, introspects and verifies tokens.
type Server struct {
	deps     Deps
	provider fosite.OAuth2Provider
	storage  *storage
}

// Deps are what the server works with. Users and Logins may be nil, which
// leaves the password grant off whatever the account policies say.
type Deps struct {
	DB       *store.Store
	Master   vault.MasterKey
	Clients  auth.ClientLookup
	Policies auth.PolicyLookup
	Users    auth.UserLookup
	Logins   *login.Service
	Audit    *audit.Log
	// Throttle counts failed password grants per source address (shared
	// with the API's failed authentications). Nil throttles nothing.
	Throttle *auth.Throttle
	// Now is the clock of refresh-token rotation (default time.Now).
	Now func() time.Time
}

// Lifetimes of refresh tokens (password grant only). Each refresh
// rotates the token and starts a new lifetime; a rotated token still
// works for RefreshGrace, so two concurrent refreshes by one app do not
// sign its user out, and after that its reuse revokes the whole family.
const (
	RefreshTokenLifespan = 7 * 24 * time.Hour
	RefreshGrace         = 30 * time.Second
)

// New builds the server. The HMAC key of the token strategy is shared by
// every node: it is created once, sealed by the master key, in the store.
func New(ctx context.Context, d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	secret, err := vault.PlatformSecret(ctx, d.DB, d.Master, "oauth-hmac")
	if err != nil {
		return nil, err
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:        15 * time.Minute,
		RefreshTokenLifespan:       RefreshTokenLifespan,
		RefreshTokenScopes:         []string{}, // every grant that issues refresh tokens (only the password grant does)
		GlobalSecret:               secret,
		ScopeStrategy:              fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:   fosite.DefaultAudienceMatchingStrategy,
		ClientSecretsHasher:        sha256Hasher{},
		TokenURL:                   "/oauth2/token",
		SendDebugMessagesToClients: false,
	}
	st := &storage{db: d.DB, clients: d.Clients, policies: d.Policies, logins: d.Logins, now: d.Now,
		passwordGrant: d.Users != nil && d.Logins != nil}
	provider := compose.Compose(cfg, st, compose.NewOAuth2HMACStrategy(cfg),
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	)
	return &Server{deps: d, provider: provider, storage: st}, nil
}

// sha256Hasher compares client secrets with their stored SHA-256 (see
// auth.HashSecret) in constant time.
type sha256Hasher struct{}

func (sha256Hasher) Compare(_ context.Context, hash, data []byte) error {
	sum := sha256.Sum256(data)
	if subtle.ConstantTimeCompare(hash, sum[:]) != 1 {
		return errors.New("secret mismatch")
	}
	return nil
}

func (sha256Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	return sum[:], nil
}

// challengeWriter adds the Basic challenge to every 401: RFC 6749 §5.2
// requires WWW-Authenticate on an invalid_client answer, which fosite
// leaves out.
type challengeWriter struct{ http.ResponseWriter }

func (c challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized && c.Header().Get("WWW-Authenticate") == "" {
		c.Header().Set("WWW-Authenticate", `Basic realm="sealpost"`)
	}
	c.ResponseWriter.WriteHeader(code)
}

// grants this server offers.
var grants = map[string]bool{"client_credentials": true, "password": true, "refresh_token": true}

// Token serves POST /oauth2/token (RFC 6749 §4.3, §4.4, §6 and §5).
func (s *Server) Token(rw http.ResponseWriter, r *http.Request) {
	w := challengeWriter{rw}
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(&Session{}), fosite.ErrInvalidRequest)
		return
	}
	// RFC 6749 §5.2: a grant this server does not offer is
	// unsupported_grant_type, and a request without client authentication
	// is invalid_client (401), whatever else it lacks.
	if gt := r.PostForm.Get("grant_type"); gt != "" && !grants[gt] {
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(&Session{}), fosite.ErrUnsupportedGrantType)
		return
	}
	clientID, _, basic := r.BasicAuth()
	if !basic {
		clientID = r.PostForm.Get("client_id")
	}
	if clientID == "" {
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(&Session{}), fosite.ErrInvalidClient)
		return
	}
	source := remoteIP(r.RemoteAddr)
	password := r.PostForm.Get("grant_type") == "password"
	if password && s.deps.Throttle != nil {
		if wait, blocked := s.deps.Throttle.Blocked(source); blocked {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeOAuthError(w, http.StatusTooManyRequests, "invalid_request", "Too many failed attempts from this address; retry later.")
			return
		}
	}
	att := &attempt{otp: r.PostForm.Get("otp"), sourceIP: source, requestID: rw.Header().Get("X-Request-Id")}
	if cred, err := s.deps.Clients.ClientCredential(ctx, clientID); err == nil {
		att.accountID = cred.AccountID
	}
	ctx = context.WithValue(ctx, attemptKey{}, att)
	ar, err := s.provider.NewAccessRequest(ctx, r, &Session{})
	if err != nil {
		if password && errors.Is(err, fosite.ErrInvalidGrant) && s.deps.Throttle != nil {
			s.deps.Throttle.Fail(source)
		}
		s.provider.WriteAccessError(ctx, w, ar, att.explain(err))
		return
	}
	cl, _ := ar.GetClient().(*client)
	sess, _ := ar.GetSession().(*Session)
	if cl == nil || sess == nil {
		s.provider.WriteAccessError(ctx, w, ar, fosite.ErrServerError)
		return
	}
	sess.AccountID, sess.ClientID = cl.cred.AccountID, cl.cred.ID
	// The account's policy governs the token endpoint too: no tokens
	// when bearer tokens are switched off or the address is not allowed.
	addr, _ := netip.ParseAddrPort(r.RemoteAddr)
	if ok, _ := cl.policy.Allows(auth.SchemeBearer, addr.Addr()); !ok {
		s.provider.WriteAccessError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The account's authentication policy does not allow tokens from here."))
		return
	}
	if err := s.grantScopes(ctx, ar, cl, sess); err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	if password && s.deps.Logins != nil {
		u := login.User{ID: sess.UserID, AccountID: sess.AccountID, MFAEnrolled: att.mfa}
		if err := s.deps.Logins.Succeeded(ctx, u, channel, att.sourceIP, att.requestID); err != nil {
			s.provider.WriteAccessError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
	}
	actorKind, actorID := auth.ActorClient, cl.cred.ID
	if sess.UserID != "" {
		actorKind, actorID = auth.ActorUser, sess.UserID
	}
	_, _ = s.deps.Audit.Append(ctx, audit.Event{
		AccountID: cl.cred.AccountID, ActorKind: string(actorKind), ActorID: actorID,
		Action: "token.issued", Target: "client/" + cl.cred.ID, Outcome: audit.OutcomeSuccess,
		SourceIP: att.sourceIP, RequestID: att.requestID,
		Details: map[string]string{"grant": r.PostForm.Get("grant_type"), "scopes": strings.Join(ar.GetGrantedScopes(), " ")},
	})
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// grantScopes grants the requested scopes (default: all the caller may
// have). A client's own tokens are bounded by the client's scopes (fosite
// checked them); a user's by the client's and the user's role, read now.
// A refresh keeps the original grant, re-checked against the user.
func (s *Server) grantScopes(ctx context.Context, ar fosite.AccessRequester, cl *client, sess *Session) error {
	allowed := fosite.Arguments(cl.GetScopes())
	if sess.UserID != "" {
		u, err := s.deps.Users.UserCredential(ctx, sess.AccountID, sess.UserID)
		if err != nil || !u.Active() {
			return fosite.ErrInvalidGrant.WithHint("The user may no longer sign in.")
		}
		allowed = intersect(allowed, u.Scopes)
	}
	if ar.GetGrantTypes().ExactOne("refresh_token") {
		// fosite re-granted the original scopes; keep those still allowed.
		kept := intersect(ar.GetGrantedScopes(), allowed)
		if len(kept) == 0 {
			return fosite.ErrInvalidGrant.WithHint("None of the granted scopes is allowed any more.")
		}
		if req, ok := ar.(*fosite.AccessRequest); ok {
			req.GrantedScope = kept
		}
		return nil
	}
	requested := ar.GetRequestedScopes()
	if len(requested) == 0 {
		// No scope parameter: grant everything allowed (§3.3 lets the
		// server apply a default).
		requested = allowed
	}
	for _, scope := range requested {
		if !allowed.Has(scope) {
			return fosite.ErrInvalidScope.WithHintf("The scope '%s' is not within the role.", scope)
		}
		ar.GrantScope(scope)
	}
	return nil
}

func intersect(a, b fosite.Arguments) fosite.Arguments {
	out := fosite.Arguments{}
	for _, x := range a {
		if b.Has(x) {
			out = append(out, x)
		}
	}
	return out
}

// writeOAuthError writes an RFC 6749 §5.2 error body with any status.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	_, _ = w.Write(body)
}

// remoteIP is the host of an address ("ip:port"); the HTTP layer has
// already replaced it with the client's when a trusted proxy forwarded it.
func remoteIP(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().String()
	}
	return addr
}

// Revoke serves POST /oauth2/revoke (RFC 7009).
func (s *Server) Revoke(rw http.ResponseWriter, r *http.Request) {
	w := challengeWriter{rw}
	ctx := r.Context()
	err := s.provider.NewRevocationRequest(ctx, r)
	if id, _, ok := r.BasicAuth(); err == nil && ok {
		if cred, cerr := s.deps.Clients.ClientCredential(ctx, id); cerr == nil {
			_, _ = s.deps.Audit.Append(ctx, audit.Event{
				AccountID: cred.AccountID, ActorKind: string(auth.ActorClient), ActorID: cred.ID,
				Action: "token.revoked", Target: "client/" + cred.ID, Outcome: audit.OutcomeSuccess,
			})
		}
	}
	s.provider.WriteRevocationResponse(ctx, w, err)
}

// Introspect serves POST /oauth2/introspect (RFC 7662). The caller
// authenticates as a client; a token of another account is reported
// inactive, so introspection reveals nothing across tenants.
func (s *Server) Introspect(rw http.ResponseWriter, r *http.Request) {
	w := challengeWriter{rw}
	ctx := r.Context()
	ir, err := s.provider.NewIntrospectionRequest(ctx, r, &Session{})
	if err != nil {
		s.provider.WriteIntrospectionError(ctx, w, err)
		return
	}
	caller, _, _ := r.BasicAuth()
	callerCred, cerr := s.deps.Clients.ClientCredential(ctx, caller)
	sess, _ := ir.GetAccessRequester().GetSession().(*Session)
	if ir.IsActive() && (cerr != nil || sess == nil || sess.AccountID != callerCred.AccountID) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	s.provider.WriteIntrospectionResponse(ctx, w, ir)
}

// Verify authenticates a request bearing an access token (RFC 6750
// Authorization header only). The principal holds the token's granted
// scopes narrowed to what the client, and for a user's token the user's
// role, allow now: a narrowed client, a changed role or a disabled user
// takes effect on the next request.
func (s *Server) Verify(r *http.Request) (auth.Principal, error) {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	ctx := r.Context()
	_, ar, err := s.provider.IntrospectToken(ctx, strings.TrimSpace(token), fosite.AccessToken, &Session{})
	if err != nil {
		return auth.Principal{}, fmt.Errorf("%w: bearer token not active", auth.ErrBadCredentials)
	}
	sess, ok := ar.GetSession().(*Session)
	cl, ok2 := ar.GetClient().(*client)
	if !ok || !ok2 {
		return auth.Principal{}, auth.ErrBadCredentials
	}
	scopes := intersect(ar.GetGrantedScopes(), cl.GetScopes())
	if sess.UserID == "" {
		return auth.Principal{AccountID: sess.AccountID, ActorKind: auth.ActorClient, ActorID: cl.cred.ID,
			Role: cl.cred.Role, Scopes: scopes}, nil
	}
	if s.deps.Users == nil {
		return auth.Principal{}, auth.ErrBadCredentials
	}
	u, err := s.deps.Users.UserCredential(ctx, sess.AccountID, sess.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Active()) {
		return auth.Principal{}, fmt.Errorf("%w: the token's user may no longer act", auth.ErrBadCredentials)
	}
	if err != nil {
		return auth.Principal{}, err
	}
	return auth.Principal{AccountID: sess.AccountID, ActorKind: auth.ActorUser, ActorID: u.ID,
		Role: u.Role, Scopes: intersect(scopes, u.Scopes)}, nil
}

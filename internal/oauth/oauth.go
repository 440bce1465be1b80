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
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Server issues, revokes, introspects and verifies tokens.
type Server struct {
	policies auth.PolicyLookup
	provider fosite.OAuth2Provider
	storage  *storage
	clients  auth.ClientLookup
	log      *audit.Log
}

// New builds the server. The HMAC key of the token strategy is shared by
// every node: it is created once, sealed by the master key, in the store.
func New(ctx context.Context, db *store.Store, master vault.MasterKey, clients auth.ClientLookup, policies auth.PolicyLookup, log *audit.Log) (*Server, error) {
	secret, err := platformSecret(ctx, db, master, "oauth-hmac")
	if err != nil {
		return nil, err
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:        15 * time.Minute,
		GlobalSecret:               secret,
		ScopeStrategy:              fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:   fosite.DefaultAudienceMatchingStrategy,
		ClientSecretsHasher:        sha256Hasher{},
		TokenURL:                   "/oauth2/token",
		SendDebugMessagesToClients: false,
	}
	st := &storage{db: db, clients: clients, ttl: func(ctx context.Context, accountID string) time.Duration {
		p, err := policies.AuthPolicy(ctx, accountID)
		if err != nil {
			return 0
		}
		return p.TokenTTL
	}}
	provider := compose.Compose(cfg, st, compose.NewOAuth2HMACStrategy(cfg),
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	)
	return &Server{provider: provider, storage: st, clients: clients, log: log, policies: policies}, nil
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

// platformSecret returns a named 32-byte secret shared by all nodes,
// creating it on first use (the first node to insert wins).
func platformSecret(ctx context.Context, db *store.Store, master vault.MasterKey, name string) ([]byte, error) {
	ad := []byte("platform_secrets/" + name)
	var sealed []byte
	err := db.Reader().QueryRow(ctx, "SELECT sealed FROM platform_secrets WHERE name = $1", name).Scan(&sealed)
	if errors.Is(err, store.ErrNotFound) {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		ct, serr := master.Encrypt(fresh, ad)
		if serr != nil {
			return nil, fmt.Errorf("seal %s: %w", name, serr)
		}
		if _, err := db.Writer().Exec(ctx, "INSERT INTO platform_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, ct); err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
		err = db.Reader().QueryRow(ctx, "SELECT sealed FROM platform_secrets WHERE name = $1", name).Scan(&sealed)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	secret, err := master.Decrypt(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open %s (wrong master key?): %w", name, err)
	}
	return secret, nil
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

// Token serves POST /oauth2/token (RFC 6749 §4.4 and §5).
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
	if gt := r.PostForm.Get("grant_type"); gt != "" && gt != "client_credentials" {
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(&Session{}), fosite.ErrUnsupportedGrantType)
		return
	}
	if _, _, basic := r.BasicAuth(); !basic && r.PostForm.Get("client_id") == "" {
		s.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(&Session{}), fosite.ErrInvalidClient)
		return
	}
	ar, err := s.provider.NewAccessRequest(ctx, r, &Session{})
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	// The account's policy governs the token endpoint too: no tokens
	// when bearer tokens are switched off or the address is not allowed.
	if cl, ok := ar.GetClient().(*client); ok {
		policy, err := s.policies.AuthPolicy(ctx, cl.cred.AccountID)
		addr, _ := netip.ParseAddrPort(r.RemoteAddr)
		if ok, _ := policy.Allows(auth.SchemeBearer, addr.Addr()); err != nil || !ok {
			s.provider.WriteAccessError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The account's authentication policy does not allow tokens from here."))
			return
		}
	}
	requested := ar.GetRequestedScopes()
	if len(requested) == 0 {
		// No scope parameter: grant everything the client holds (§3.3
		// lets the server apply a default).
		requested = ar.GetClient().GetScopes()
	}
	for _, scope := range requested {
		ar.GrantScope(scope)
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	if cl, ok := ar.GetClient().(*client); ok {
		_, _ = s.log.Append(ctx, audit.Event{
			AccountID: cl.cred.AccountID, ActorKind: string(auth.ActorClient), ActorID: cl.cred.ID,
			Action: "token.issued", Target: "client/" + cl.cred.ID, Outcome: audit.OutcomeSuccess,
			Details: map[string]string{"grant": "client_credentials", "scopes": strings.Join(ar.GetGrantedScopes(), " ")},
		})
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// Revoke serves POST /oauth2/revoke (RFC 7009).
func (s *Server) Revoke(rw http.ResponseWriter, r *http.Request) {
	w := challengeWriter{rw}
	ctx := r.Context()
	err := s.provider.NewRevocationRequest(ctx, r)
	if id, _, ok := r.BasicAuth(); err == nil && ok {
		if cred, cerr := s.clients.ClientCredential(ctx, id); cerr == nil {
			_, _ = s.log.Append(ctx, audit.Event{
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
	callerCred, cerr := s.clients.ClientCredential(ctx, caller)
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
// scopes, narrowed to the client's current ones, so a client's narrowed
// scopes or revocation take effect at once.
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
	var scopes []string
	for _, sc := range ar.GetGrantedScopes() {
		if cl.GetScopes().Has(sc) {
			scopes = append(scopes, sc)
		}
	}
	return auth.Principal{AccountID: sess.AccountID, ActorKind: auth.ActorClient, ActorID: cl.cred.ID,
		Role: cl.cred.Role, Scopes: scopes}, nil
}

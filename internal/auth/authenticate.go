package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Errors Authenticate returns. Both mean 401 to the caller; the split
// exists for audit and metrics, never for the response body.
var (
	// ErrNoCredentials: the request carried no credential at all.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrBadCredentials: a credential was presented and refused.
	ErrBadCredentials = errors.New("auth: invalid credentials")
)

// ClientCredential is what the authenticator needs to know of an API
// client.
type ClientCredential struct {
	ID         string
	AccountID  string
	SecretHash []byte
	Role       string
	Scopes     []string
	Revoked    bool
	// AccountActive is false when the account is suspended or closed.
	AccountActive bool
	// FirstParty marks the organisation's own applications, the only
	// clients the password grant may serve.
	FirstParty bool
}

// UserCredential is what the authenticator needs to know of a user.
type UserCredential struct {
	ID            string
	AccountID     string
	Email         string
	Role          string
	Scopes        []string // the role's
	Disabled      bool
	AccountActive bool
}

// Active reports whether the user may act at all.
func (u UserCredential) Active() bool { return !u.Disabled && u.AccountActive }

// UserLookup finds a user of an account.
type UserLookup interface {
	UserCredential(ctx context.Context, accountID, userID string) (UserCredential, error)
}

// ClientLookup finds an API client by its public id across accounts (the
// id is the only thing a request names; the account comes from the row).
type ClientLookup interface {
	ClientCredential(ctx context.Context, clientID string) (ClientCredential, error)
}

// Authenticator resolves API credentials on a request to a Principal: the
// X-API-Key header, HTTP Basic, and HMAC-signed sessions. OAuth 2.0 bearer
// tokens plug in here next.
type Authenticator struct {
	Clients ClientLookup
	// Sessions verifies requests signed with an HMAC session
	// (Authorization: Sealpost-HMAC-SHA256 ...). Nil refuses them.
	Sessions SessionVerifier
	// Tokens verifies OAuth 2.0 bearer tokens (Authorization: Bearer).
	// Nil refuses them.
	Tokens SessionVerifier
	// Policies, when set, applies each account's policy (allowed schemes,
	// source address allow-list) after the credential checks out.
	Policies PolicyLookup
	// Console verifies console session cookies on requests that carry no
	// other credential; it answers ErrNoCredentials when there is no
	// cookie. Nil ignores cookies.
	Console SessionVerifier
}

// SessionVerifier authenticates a request signed with an HMAC session.
type SessionVerifier interface {
	Verify(r *http.Request) (Principal, error)
}

// hmacScheme is the Authorization scheme of signed requests.
const hmacScheme = "Sealpost-HMAC-SHA256"

// dummyHash equalises the work done for unknown client ids.
var dummyHash = HashSecret("sealpost-dummy-secret")

// Authenticate implements the httpapi authentication hook.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	p, scheme, err := a.credential(r)
	if err != nil {
		return Principal{}, err
	}
	if a.Policies == nil {
		return p, nil
	}
	policy, err := a.Policies.AuthPolicy(r.Context(), p.AccountID)
	if err != nil {
		return Principal{}, fmt.Errorf("load auth policy: %w", err)
	}
	addr, _ := netip.ParseAddrPort(r.RemoteAddr)
	if ok, why := policy.Allows(scheme, addr.Addr()); !ok {
		return Principal{}, &RefusedClient{AccountID: p.AccountID, ClientID: p.ActorID, Reason: why}
	}
	return p, nil
}

// credential verifies whichever credential the request carries and
// names its scheme.
func (a *Authenticator) credential(r *http.Request) (Principal, string, error) {
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		if a.Tokens == nil {
			return Principal{}, SchemeBearer, ErrBadCredentials
		}
		p, err := a.Tokens.Verify(r)
		return p, SchemeBearer, err
	}
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, hmacScheme) {
		if a.Sessions == nil {
			return Principal{}, SchemeHMAC, ErrBadCredentials
		}
		p, err := a.Sessions.Verify(r)
		return p, SchemeHMAC, err
	}
	if a.Console != nil && r.Header.Get("Authorization") == "" && r.Header.Get("X-API-Key") == "" {
		if p, err := a.Console.Verify(r); !errors.Is(err, ErrNoCredentials) {
			return p, SchemeConsole, err
		}
	}
	p, err := a.clientCredential(r)
	return p, SchemeOf(r), err
}

// SchemeOf names the credential scheme a request uses (SchemeHMAC,
// SchemeAPIKey or SchemeBasic).
func SchemeOf(r *http.Request) string {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, hmacScheme):
		return SchemeHMAC
	case strings.EqualFold(scheme, "Bearer"):
		return SchemeBearer
	}
	if r.Header.Get("X-API-Key") != "" {
		return SchemeAPIKey
	}
	if scheme == "" && len(r.Cookies()) > 0 {
		return SchemeConsole
	}
	return SchemeBasic
}

func (a *Authenticator) clientCredential(r *http.Request) (Principal, error) {
	id, secret, ok := credentialsFrom(r)
	if !ok {
		return Principal{}, ErrNoCredentials
	}
	if id == "" || secret == "" {
		return Principal{}, ErrBadCredentials
	}
	cred, err := a.Clients.ClientCredential(r.Context(), id)
	if err != nil {
		SecretMatches(dummyHash, secret)
		return Principal{}, ErrBadCredentials
	}
	switch {
	case !SecretMatches(cred.SecretHash, secret):
		return Principal{}, &RefusedClient{AccountID: cred.AccountID, ClientID: cred.ID, Reason: "wrong secret"}
	case cred.Revoked:
		return Principal{}, &RefusedClient{AccountID: cred.AccountID, ClientID: cred.ID, Reason: "revoked"}
	case !cred.AccountActive:
		return Principal{}, &RefusedClient{AccountID: cred.AccountID, ClientID: cred.ID, Reason: "account inactive"}
	}
	return Principal{
		AccountID: cred.AccountID,
		ActorKind: ActorClient,
		ActorID:   cred.ID,
		Role:      cred.Role,
		Scopes:    cred.Scopes,
	}, nil
}

// credentialsFrom extracts client id and secret from X-API-Key
// ("client_id:client_secret") or Authorization: Basic (RFC 7617).
func credentialsFrom(r *http.Request) (id, secret string, ok bool) {
	if key := r.Header.Get("X-API-Key"); key != "" {
		id, secret, _ = strings.Cut(key, ":")
		return id, secret, true
	}
	authz := r.Header.Get("Authorization")
	scheme, value, found := strings.Cut(authz, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", authz != ""
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return "", "", true
	}
	// RFC 7617 §2: the user-id cannot contain a colon; split at the first.
	id, secret, _ = strings.Cut(string(raw), ":")
	return id, secret, true
}

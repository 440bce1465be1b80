// Package session implements HMAC-signed sessions, the highest-assurance
// way in: an API client opens a session with its credentials and gets a
// session id and secret; every following request is signed
// (pkg/sealpostclient defines the canonical string) and carries a fresh
// timestamp and a nonce the server accepts once. The session secret is
// sealed at rest by the account's data key. Sessions end when they expire,
// are revoked (by the client, by an admin, or all of a client's at once),
// or when the client is revoked or its secret rotated.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
	"github.com/sealpost/sealpost/pkg/sealpostclient"
)

// Defaults of Options.
const (
	DefaultTTL  = time.Hour
	DefaultSkew = 5 * time.Minute
)

// Errors callers branch on.
var (
	// ErrNotAClient: only an API client authenticated by its own
	// credentials may open a session.
	ErrNotAClient = errors.New("session: only an API client's credentials open a session")
	// ErrForbidden: the principal may not revoke that session.
	ErrForbidden = errors.New("session: not allowed")
)

// Options tunes a Manager. The zero value uses the defaults.
type Options struct {
	TTL  time.Duration // session lifetime (DefaultTTL)
	Skew time.Duration // accepted clock difference (DefaultSkew)
	Now  func() time.Time
}

// Manager opens, verifies and revokes sessions.
type Manager struct {
	db    *store.Store
	vault *vault.Vault
	log   *audit.Log
	opts  Options
}

// New returns a Manager.
func New(db *store.Store, v *vault.Vault, log *audit.Log, opts Options) *Manager {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Skew <= 0 {
		opts.Skew = DefaultSkew
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{db: db, vault: v, log: log, opts: opts}
}

// Opened is a new session; Secret is shown this once.
type Opened struct {
	ID        string
	Secret    string
	ExpiresAt time.Time
}

func secretAD(id string) []byte { return []byte("hmac_sessions/" + id + "/secret") }

// Open opens a session for the actor, which must be an API client
// authenticated by its credentials (not by another session).
func (m *Manager) Open(ctx context.Context, actor account.Actor) (Opened, error) {
	p := actor.Principal
	if p.ActorKind != auth.ActorClient || p.SessionID != "" {
		return Opened{}, ErrNotAClient
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Opened{}, err
	}
	o := Opened{ID: "sps_" + store.NewID(), Secret: base64.RawURLEncoding.EncodeToString(raw[:])}
	sealed, err := m.vault.Seal(ctx, p.AccountID, []byte(o.Secret), secretAD(o.ID))
	if err != nil {
		return Opened{}, fmt.Errorf("seal session secret: %w", err)
	}
	now := m.opts.Now().UTC().Truncate(time.Microsecond)
	o.ExpiresAt = now.Add(m.opts.TTL)
	err = m.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO hmac_sessions (id, account_id, client_id, secret_sealed, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, o.ID, p.AccountID, p.ActorID, sealed, store.Micros(now), store.Micros(o.ExpiresAt)); err != nil {
			return fmt.Errorf("store session: %w", err)
		}
		return m.audit(ctx, tx, actor, "session.opened", o.ID, nil)
	})
	if err != nil {
		return Opened{}, err
	}
	return o, nil
}

// Revoke ends one session. A client may end its own sessions; a principal
// with the admin scope any session of its account.
func (m *Manager) Revoke(ctx context.Context, actor account.Actor, sessionID string) error {
	p := actor.Principal
	return m.db.InTx(ctx, func(tx store.Tx) error {
		var clientID string
		err := tx.QueryRow(ctx, "SELECT client_id FROM hmac_sessions WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL",
			p.AccountID, sessionID).Scan(&clientID)
		if err != nil {
			return fmt.Errorf("session %s: %w", sessionID, err)
		}
		if !p.Has(auth.ScopeAdmin) && !(p.ActorKind == auth.ActorClient && p.ActorID == clientID) {
			return ErrForbidden
		}
		if _, err := tx.Exec(ctx, "UPDATE hmac_sessions SET revoked_at = $1 WHERE account_id = $2 AND id = $3",
			store.Micros(m.opts.Now()), p.AccountID, sessionID); err != nil {
			return err
		}
		return m.audit(ctx, tx, actor, "session.revoked", sessionID, map[string]string{"client_id": clientID})
	})
}

// RevokeClientSessions ends every open session of a client of the actor's
// account and returns how many.
func (m *Manager) RevokeClientSessions(ctx context.Context, actor account.Actor, clientID string) (int64, error) {
	var n int64
	err := m.db.InTx(ctx, func(tx store.Tx) error {
		var exists int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM api_clients WHERE account_id = $1 AND id = $2",
			actor.Principal.AccountID, clientID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return fmt.Errorf("client %s: %w", clientID, store.ErrNotFound)
		}
		var err error
		n, err = tx.Exec(ctx, "UPDATE hmac_sessions SET revoked_at = $1 WHERE account_id = $2 AND client_id = $3 AND revoked_at IS NULL",
			store.Micros(m.opts.Now()), actor.Principal.AccountID, clientID)
		if err != nil {
			return err
		}
		return m.audit(ctx, tx, actor, "session.revoked_all", "client/"+clientID, map[string]string{"sessions": fmt.Sprint(n)})
	})
	return n, err
}

// Verify authenticates a request signed with a session. It checks, in
// order: the header, the session (open, unexpired, its client active and
// not rotated since), the timestamp window, the signature (constant
// time), and last the nonce, so a forger cannot burn nonces. Every refusal
// wraps auth.ErrBadCredentials; refusals of a known session name its
// client for the audit log.
func (m *Manager) Verify(r *http.Request) (auth.Principal, error) {
	a, ok, err := sealpostclient.ParseAuthorization(r.Header.Get("Authorization"))
	if !ok || err != nil {
		return auth.Principal{}, fmt.Errorf("%w: malformed signature header", auth.ErrBadCredentials)
	}
	ctx := r.Context()
	s, err := m.load(ctx, a.Session)
	if err != nil {
		return auth.Principal{}, err
	}
	refuse := func(reason string) error {
		return &auth.RefusedClient{AccountID: s.accountID, ClientID: s.clientID, Reason: reason}
	}
	now := m.opts.Now()
	switch {
	case s.revoked:
		return auth.Principal{}, refuse("session revoked")
	case !now.Before(s.expiresAt):
		return auth.Principal{}, refuse("session expired")
	case s.clientRevoked || !s.accountActive:
		return auth.Principal{}, refuse("client revoked")
	case s.rotatedAt.After(s.createdAt):
		return auth.Principal{}, refuse("client secret rotated")
	}
	if skew := now.Sub(time.Unix(a.Timestamp, 0)); skew > m.opts.Skew || skew < -m.opts.Skew {
		return auth.Principal{}, refuse("stale timestamp")
	}
	body, err := sealpostclient.ReadBody(r)
	if err != nil {
		return auth.Principal{}, err // too large, or the connection failed: not a credential problem
	}
	secret, err := m.vault.Open(ctx, s.accountID, s.sealed, secretAD(a.Session))
	if err != nil {
		return auth.Principal{}, fmt.Errorf("open session secret: %w", err)
	}
	want := sealpostclient.Signature(secret, sealpostclient.CanonicalString(r, body, a.SignedHeaders, a.Timestamp, a.Nonce))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(a.Signature))) {
		return auth.Principal{}, refuse("bad signature")
	}
	n, err := m.db.Writer().Exec(ctx, "INSERT INTO hmac_nonces (session_id, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
		a.Session, a.Nonce, store.Micros(now))
	if err != nil {
		return auth.Principal{}, fmt.Errorf("record nonce: %w", err)
	}
	if n == 0 {
		return auth.Principal{}, refuse("replayed nonce")
	}
	return auth.Principal{AccountID: s.accountID, ActorKind: auth.ActorClient, ActorID: s.clientID,
		Role: s.role, Scopes: s.scopes, SessionID: a.Session}, nil
}

type loaded struct {
	accountID, clientID, role string
	scopes                    []string
	sealed                    []byte
	createdAt, expiresAt      time.Time
	rotatedAt                 time.Time
	revoked, clientRevoked    bool
	accountActive             bool
}

// load reads a session with its client's current role and scopes, so a
// changed role or a revoked client takes effect on the next request.
func (m *Manager) load(ctx context.Context, id string) (loaded, error) {
	var s loaded
	var scopes, status string
	var created, expires, revoked, rotated, clientRevoked int64
	err := m.db.Reader().QueryRow(ctx, `SELECT s.account_id, s.client_id, c.role, c.scopes, s.secret_sealed, s.created_at,
		s.expires_at, COALESCE(s.revoked_at, 0), c.secret_rotated_at, COALESCE(c.revoked_at, 0), a.status
		FROM hmac_sessions s JOIN api_clients c ON c.id = s.client_id AND c.account_id = s.account_id
		JOIN accounts a ON a.id = s.account_id WHERE s.id = $1`, id).
		Scan(&s.accountID, &s.clientID, &s.role, &scopes, &s.sealed, &created, &expires, &revoked, &rotated, &clientRevoked, &status)
	if errors.Is(err, store.ErrNotFound) {
		return loaded{}, fmt.Errorf("%w: unknown session", auth.ErrBadCredentials)
	}
	if err != nil {
		return loaded{}, fmt.Errorf("load session: %w", err)
	}
	s.scopes = strings.Fields(scopes)
	s.createdAt, s.expiresAt, s.rotatedAt = store.FromMicros(created), store.FromMicros(expires), store.FromMicros(rotated)
	s.revoked, s.clientRevoked, s.accountActive = revoked != 0, clientRevoked != 0, status == account.StatusActive
	return s, nil
}

// Sweep deletes nonces older than the timestamp window (a replay of them
// is refused as stale anyway) and sessions ended more than a day ago.
func (m *Manager) Sweep(ctx context.Context) (int64, error) {
	now := m.opts.Now()
	n1, err := m.db.Writer().Exec(ctx, "DELETE FROM hmac_nonces WHERE seen_at < $1", store.Micros(now.Add(-2*m.opts.Skew)))
	if err != nil {
		return 0, fmt.Errorf("sweep nonces: %w", err)
	}
	n2, err := m.db.Writer().Exec(ctx, "DELETE FROM hmac_sessions WHERE expires_at < $1 OR revoked_at < $1",
		store.Micros(now.Add(-24*time.Hour)))
	if err != nil {
		return n1, fmt.Errorf("sweep sessions: %w", err)
	}
	return n1 + n2, nil
}

func (m *Manager) audit(ctx context.Context, tx store.Tx, actor account.Actor, action, target string, details map[string]string) error {
	p := actor.Principal
	if !strings.Contains(target, "/") {
		target = "session/" + target
	}
	_, err := m.log.AppendTx(ctx, tx, audit.Event{
		AccountID: p.AccountID, ActorKind: string(p.ActorKind), ActorID: p.ActorID, Action: action, Target: target,
		Outcome: audit.OutcomeSuccess, SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: details,
	})
	return err
}

package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// Stages of a console session. Only a full session reaches the console
// and the API; the others reach only the page that completes them.
const (
	StageMFA   = "mfa"   // password accepted, second factor pending
	StageEnrol = "enrol" // the account requires MFA: enrol before anything else
	StageFull  = "full"
)

// pendingLifetime bounds the stages before a full session.
const pendingLifetime = 10 * time.Minute

// ErrNoSession: the cookie names no live session (unknown, revoked,
// idle too long, past its absolute lifetime, or its user may no longer
// sign in).
var ErrNoSession = errors.New("console: no session")

// Session is a signed-in console session.
type Session struct {
	ID         string
	AccountID  string
	UserID     string
	Email      string
	Role       string
	Scopes     []string
	Stage      string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	SourceIP   string
	UserAgent  string
	// token is the cookie value; known only right after Create and
	// Lookup.
	token string
}

// CSRFToken is the synchronizer token forms and API calls of this session
// send back: an HMAC of the session's secret cookie value, so it is
// unguessable without the cookie, yet needs no storage.
func (s Session) CSRFToken() string {
	mac := hmac.New(sha256.New, []byte(s.token))
	mac.Write([]byte("sealpost console csrf"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// CheckCSRF compares a presented token with the session's in constant
// time.
func (s Session) CheckCSRF(presented string) bool {
	return s.token != "" && hmac.Equal([]byte(presented), []byte(s.CSRFToken()))
}

// Sessions stores console sessions; only the SHA-256 of a cookie's token
// is kept.
type Sessions struct {
	db       *store.Store
	idle     time.Duration
	absolute time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewSessions returns the session store.
func NewSessions(db *store.Store, idle, absolute time.Duration) *Sessions {
	return &Sessions{db: db, idle: idle, absolute: absolute, Now: time.Now}
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Create starts a session of stage for a user and returns it with its
// cookie token.
func (s *Sessions) Create(ctx context.Context, accountID, userID, stage, sourceIP, userAgent string) (Session, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Session{}, err
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	life := s.absolute
	if stage != StageFull {
		life = min(pendingLifetime, s.absolute)
	}
	if len(userAgent) > 300 {
		userAgent = userAgent[:300]
	}
	sess := Session{ID: store.NewID(), AccountID: accountID, UserID: userID, Stage: stage, CreatedAt: now,
		LastSeenAt: now, ExpiresAt: now.Add(life), SourceIP: sourceIP, UserAgent: userAgent,
		token: base64.RawURLEncoding.EncodeToString(raw[:])}
	_, err := s.db.Writer().Exec(ctx, `INSERT INTO web_sessions (id, token_hash, account_id, user_id, stage, created_at,
		last_seen_at, expires_at, source_ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)`,
		sess.ID, hashToken(sess.token), accountID, userID, stage, store.Micros(now), store.Micros(sess.ExpiresAt), sourceIP, userAgent)
	if err != nil {
		return Session{}, fmt.Errorf("create console session: %w", err)
	}
	return sess, nil
}

// touchEvery limits last-seen writes: a session seen within this is not
// rewritten on every request.
const touchEvery = 30 * time.Second

// Lookup returns the live session of a cookie token, with the user's
// current role and scopes, and records the activity. Disabled users,
// inactive accounts, idle and expired sessions are ErrNoSession.
func (s *Sessions) Lookup(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 100 {
		return Session{}, ErrNoSession
	}
	var sess Session
	var created, seen, expires, revoked int64
	var disabled bool
	var status, scopes string
	err := s.db.Reader().QueryRow(ctx, `SELECT w.id, w.account_id, w.user_id, u.email, u.role, r.scopes, w.stage,
		w.created_at, w.last_seen_at, w.expires_at, COALESCE(w.revoked_at, 0), w.source_ip, w.user_agent, u.disabled, a.status
		FROM web_sessions w JOIN users u ON u.id = w.user_id AND u.account_id = w.account_id
		JOIN roles r ON r.name = u.role JOIN accounts a ON a.id = w.account_id
		WHERE w.token_hash = $1`, hashToken(token)).
		Scan(&sess.ID, &sess.AccountID, &sess.UserID, &sess.Email, &sess.Role, &scopes, &sess.Stage, &created, &seen, &expires,
			&revoked, &sess.SourceIP, &sess.UserAgent, &disabled, &status)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("console session: %w", err)
	}
	sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = store.FromMicros(created), store.FromMicros(seen), store.FromMicros(expires)
	sess.Scopes, sess.token = strings.Fields(scopes), token
	now := s.Now()
	if revoked != 0 || disabled || status != "active" || !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= s.idle {
		return Session{}, ErrNoSession
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if _, err := s.db.Writer().Exec(ctx, "UPDATE web_sessions SET last_seen_at = $1 WHERE id = $2",
			store.Micros(now), sess.ID); err != nil {
			return Session{}, fmt.Errorf("touch console session: %w", err)
		}
		sess.LastSeenAt = now
	}
	return sess, nil
}

// List returns a user's live sessions, newest first.
func (s *Sessions) List(ctx context.Context, accountID, userID string) ([]Session, error) {
	now := s.Now()
	rows, err := s.db.Reader().Query(ctx, `SELECT id, stage, created_at, last_seen_at, expires_at, source_ip, user_agent
		FROM web_sessions WHERE account_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 AND last_seen_at > $4
		ORDER BY created_at DESC`, accountID, userID, store.Micros(now), store.Micros(now.Add(-s.idle)))
	if err != nil {
		return nil, fmt.Errorf("list console sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		sess := Session{AccountID: accountID, UserID: userID}
		var created, seen, expires int64
		if err := rows.Scan(&sess.ID, &sess.Stage, &created, &seen, &expires, &sess.SourceIP, &sess.UserAgent); err != nil {
			return nil, err
		}
		sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = store.FromMicros(created), store.FromMicros(seen), store.FromMicros(expires)
		out = append(out, sess)
	}
	return out, rows.Err()
}

// Revoke ends one session of a user; false when it was not theirs or
// already over.
func (s *Sessions) Revoke(ctx context.Context, accountID, userID, id string) (bool, error) {
	n, err := s.db.Writer().Exec(ctx, `UPDATE web_sessions SET revoked_at = $1
		WHERE account_id = $2 AND user_id = $3 AND id = $4 AND revoked_at IS NULL`, store.Micros(s.Now()), accountID, userID, id)
	if err != nil {
		return false, fmt.Errorf("revoke console session: %w", err)
	}
	return n > 0, nil
}

// RevokeAll ends every session of a user and reports how many.
func (s *Sessions) RevokeAll(ctx context.Context, accountID, userID string) (int64, error) {
	n, err := s.db.Writer().Exec(ctx, `UPDATE web_sessions SET revoked_at = $1
		WHERE account_id = $2 AND user_id = $3 AND revoked_at IS NULL`, store.Micros(s.Now()), accountID, userID)
	if err != nil {
		return 0, fmt.Errorf("revoke console sessions: %w", err)
	}
	return n, nil
}

// Sweep deletes sessions that ended more than a day ago.
func (s *Sessions) Sweep(ctx context.Context) (int64, error) {
	cutoff := store.Micros(s.Now().Add(-24 * time.Hour))
	return s.db.Writer().Exec(ctx, `DELETE FROM web_sessions WHERE expires_at < $1 OR revoked_at < $1 OR last_seen_at < $2`,
		cutoff, cutoff-int64(s.idle/time.Microsecond))
}

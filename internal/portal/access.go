package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// CodeDigits is the length of one-time codes.
const CodeDigits = 6

// Link is what a valid link token opens before sign-in.
type Link struct {
	ID, AccountID  string
	MessageID      string
	RcptIndex      int
	Recipient      string
	Sender         string
	ChallengeKind  string
	ChallengeHint  string
	challengeHash  string
	CodePending    bool // a code was sent and is still usable
	LockedUntil    time.Time
	ExpiresAt      time.Time // under the account's current policy (set by Open)
	created        time.Time
	recalled, gone bool
}

// MaskedRecipient shows enough of the address for the recipient to know
// where the code goes: "p***@patient.example".
func (l Link) MaskedRecipient() string {
	local, domain, ok := strings.Cut(l.Recipient, "@")
	if !ok || local == "" {
		return "***"
	}
	return string([]rune(local)[:1]) + "***@" + domain
}

// lookup resolves a link token. The token's hash is the lookup key, so
// an unknown and a tampered token are one case (ErrLinkInvalid); a valid
// token may learn that its message expired or was recalled. An expired
// message not yet swept is shredded now.
func (s *Service) lookup(ctx context.Context, q store.Querier, token string, forUpdate bool) (Link, error) {
	if token == "" || len(token) > 64 {
		return Link{}, ErrLinkInvalid
	}
	query := `SELECT id, account_id, message_id, rcpt_index, recipient, sender, challenge_kind, challenge_hint, challenge_hash,
		code_hash IS NOT NULL AND code_expires_at > $2, locked_until, created_at, recalled_at IS NOT NULL, shredded_at IS NOT NULL
		FROM portal_messages WHERE token_hash = $1`
	if forUpdate && q.(store.Tx).Dialect() == store.Postgres {
		query += " FOR UPDATE"
	}
	var l Link
	var locked, created int64
	err := q.QueryRow(ctx, query, hashToken(token), store.Micros(s.now())).Scan(&l.ID, &l.AccountID, &l.MessageID, &l.RcptIndex,
		&l.Recipient, &l.Sender, &l.ChallengeKind, &l.ChallengeHint, &l.challengeHash, &l.CodePending, &locked, &created,
		&l.recalled, &l.gone)
	if errors.Is(err, store.ErrNotFound) {
		return Link{}, ErrLinkInvalid
	}
	if err != nil {
		return Link{}, fmt.Errorf("portal link: %w", err)
	}
	l.LockedUntil, l.created = store.FromMicros(locked), store.FromMicros(created)
	return l, nil
}

// state maps a looked-up link to the error its pages show, shredding an
// expired message that the sweeper has not reached yet.
func (s *Service) state(ctx context.Context, l Link) error {
	switch {
	case l.recalled:
		return ErrRecalled
	case l.gone:
		return ErrExpired
	case !s.now().Before(l.ExpiresAt):
		if err := s.shred(ctx, l.AccountID, l.ID, EventExpired, "portal.expired", Actor{Kind: string(auth.ActorSystem), ID: "portal"}); err != nil {
			return err
		}
		return ErrExpired
	case s.now().Before(l.LockedUntil):
		return ErrLocked
	}
	return nil
}

// Open resolves a link token for its first page: the link or why it does
// not open (ErrLinkInvalid, ErrExpired, ErrRecalled, ErrLocked with the
// Link's LockedUntil set).
func (s *Service) Open(ctx context.Context, token string) (Link, error) {
	l, err := s.lookup(ctx, s.db.Reader(), token, false)
	if err != nil {
		return Link{}, err
	}
	// The current policy, not the one at deposit: content older than the
	// account now keeps is refused even before the sweep reaches it.
	if l.ExpiresAt, err = s.expiresAt(ctx, l.AccountID, l.created); err != nil {
		return Link{}, err
	}
	if err := s.state(ctx, l); err != nil {
		return l, err
	}
	return l, nil
}

// Client is the browser side of a request (audit).
type Client struct{ SourceIP, RequestID string }

// SendCode emails a fresh one-time code for the link, replacing any
// earlier one. Codes are CodeDigits digits, stored as an HMAC, valid for
// CodeTTL and once; a second request within CodeInterval is
// ErrCodeTooSoon.
func (s *Service) SendCode(ctx context.Context, token string, c Client) error {
	l, err := s.Open(ctx, token)
	if err != nil {
		return err
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	now := s.now()
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		n, err := tx.Exec(ctx, `UPDATE portal_messages SET code_hash = $1, code_expires_at = $2, code_sent_at = $3
			WHERE account_id = $4 AND id = $5 AND code_sent_at <= $6 AND recalled_at IS NULL AND shredded_at IS NULL`,
			s.codeHash(l.ID, code), store.Micros(now.Add(s.opts.CodeTTL)), store.Micros(now), l.AccountID, l.ID,
			store.Micros(now.Add(-s.opts.CodeInterval)))
		if err != nil {
			return fmt.Errorf("store portal code: %w", err)
		}
		if n == 0 {
			return ErrCodeTooSoon
		}
		if err := event(ctx, tx, l.AccountID, l.MessageID, l.RcptIndex, EventCodeSent, now, ""); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, l.AccountID, recipientActor(l.ID, c.SourceIP, c.RequestID), "portal.code_sent", l.ID, "success", nil)
	})
	if err != nil {
		return err
	}
	b, err := s.branding(ctx, l.AccountID)
	if err != nil {
		return err
	}
	n := codeNotice(b.Name, code, s.opts.CodeTTL)
	n.AccountID, n.PortalID, n.Purpose = l.AccountID, l.ID, PurposeCode
	n.From, n.To = fromWithName(l.Sender, b.Name), l.Recipient
	if _, err := s.notify.Notify(ctx, n); err != nil {
		return fmt.Errorf("send portal code: %w", err)
	}
	return nil
}

// newCode returns CodeDigits uniformly random decimal digits.
func newCode() (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(CodeDigits), nil)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*d", CodeDigits, n), nil
}

func (s *Service) codeHash(portalID, code string) []byte {
	mac := hmac.New(sha256.New, s.codes)
	var n [4]byte
	for _, part := range []string{"sealpost/portal-code/v1", portalID, code} {
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		mac.Write(n[:])
		mac.Write([]byte(part))
	}
	return mac.Sum(nil)
}

// Session is a recipient's signed-in session on one portal message.
type Session struct {
	ID, AccountID, PortalID string
	MessageID               string
	RcptIndex               int
	Recipient, Sender       string
	ExpiresAt               time.Time
	token                   string
}

// Token is the session's cookie value (known right after Verify and
// Session).
func (ss Session) Token() string { return ss.token }

// CSRFToken is the synchronizer token this session's forms carry: an
// HMAC of its secret cookie value, unguessable without the cookie.
func (ss Session) CSRFToken() string {
	mac := hmac.New(sha256.New, []byte(ss.token))
	mac.Write([]byte("sealpost portal csrf"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// CheckCSRF compares a presented token in constant time.
func (ss Session) CheckCSRF(presented string) bool {
	return ss.token != "" && hmac.Equal([]byte(presented), []byte(ss.CSRFToken()))
}

// Verify checks a one-time code (and the challenge answer when the sender
// set one) and opens a session. A wrong, expired or used code counts as a
// failure; MaxAttempts failures lock the link for Lockout and burn the
// code (ErrLocked). A code works once.
func (s *Service) Verify(ctx context.Context, token, code, answer string, c Client) (Session, error) {
	l, err := s.Open(ctx, token)
	if err != nil {
		return Session{}, err
	}
	// The slow argon2id check runs before the transaction, so the write
	// lock is not held for it; the code decides inside.
	answerOK := true
	if l.ChallengeKind != "" {
		answerOK, _ = auth.VerifyPassword(l.challengeHash, normalizeAnswer(l.ChallengeKind, answer))
	}
	code = strings.Join(strings.Fields(code), "")
	var sess Session
	var outcome error
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		now := s.now()
		cur, err := s.lookup(ctx, tx, token, true)
		if err != nil {
			return err
		}
		if now.Before(cur.LockedUntil) {
			outcome = ErrLocked
			return nil
		}
		var stored []byte
		var expires int64
		var failures int
		if err := tx.QueryRow(ctx, `SELECT code_hash, code_expires_at, failed_attempts FROM portal_messages
			WHERE account_id = $1 AND id = $2`, l.AccountID, l.ID).Scan(&stored, &expires, &failures); err != nil {
			return err
		}
		codeOK := stored != nil && now.Before(store.FromMicros(expires)) && len(code) == CodeDigits &&
			hmac.Equal(stored, s.codeHash(l.ID, code))
		actor := recipientActor(l.ID, c.SourceIP, c.RequestID)
		if !codeOK || !answerOK {
			outcome = ErrBadCode
			return s.fail(ctx, tx, l, actor, failures+1, now, &outcome)
		}
		if _, err := tx.Exec(ctx, `UPDATE portal_messages SET code_hash = NULL, code_expires_at = 0, failed_attempts = 0
			WHERE account_id = $1 AND id = $2`, l.AccountID, l.ID); err != nil {
			return err
		}
		if sess, err = s.createSession(ctx, tx, l, now); err != nil {
			return err
		}
		if err := event(ctx, tx, l.AccountID, l.MessageID, l.RcptIndex, EventSignedIn, now, ""); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, l.AccountID, actor, "portal.signed_in", l.ID, "success", map[string]string{"session": sess.ID})
	})
	if err != nil {
		return Session{}, err
	}
	if outcome != nil {
		return Session{}, outcome
	}
	return sess, nil
}

// fail records a failed code: audited, counted, and at MaxAttempts the
// link locks and the code is burned.
func (s *Service) fail(ctx context.Context, tx store.Tx, l Link, actor Actor, failures int, now time.Time, outcome *error) error {
	details := map[string]string{"attempt": strconv.Itoa(failures)}
	if err := event(ctx, tx, l.AccountID, l.MessageID, l.RcptIndex, EventCodeFailed, now, ""); err != nil {
		return err
	}
	if err := s.auditTx(ctx, tx, l.AccountID, actor, "portal.code_failed", l.ID, "failure", details); err != nil {
		return err
	}
	if failures < s.opts.MaxAttempts {
		_, err := tx.Exec(ctx, "UPDATE portal_messages SET failed_attempts = $1 WHERE account_id = $2 AND id = $3", failures, l.AccountID, l.ID)
		return err
	}
	until := now.Add(s.opts.Lockout)
	if _, err := tx.Exec(ctx, `UPDATE portal_messages SET failed_attempts = 0, locked_until = $1, code_hash = NULL, code_expires_at = 0
		WHERE account_id = $2 AND id = $3`, store.Micros(until), l.AccountID, l.ID); err != nil {
		return err
	}
	*outcome = ErrLocked
	if err := event(ctx, tx, l.AccountID, l.MessageID, l.RcptIndex, EventLocked, now, ""); err != nil {
		return err
	}
	return s.auditTx(ctx, tx, l.AccountID, actor, "portal.locked", l.ID, "denied",
		map[string]string{"until": until.Format(time.RFC3339)})
}

func (s *Service) createSession(ctx context.Context, tx store.Tx, l Link, now time.Time) (Session, error) {
	token, hash, err := newToken()
	if err != nil {
		return Session{}, err
	}
	sess := Session{ID: store.NewID(), AccountID: l.AccountID, PortalID: l.ID, MessageID: l.MessageID, RcptIndex: l.RcptIndex,
		Recipient: l.Recipient, Sender: l.Sender, ExpiresAt: now.Add(s.opts.AbsoluteTimeout), token: token}
	_, err = tx.Exec(ctx, `INSERT INTO portal_sessions (id, token_hash, account_id, portal_message_id, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $5, $6)`, sess.ID, hash, l.AccountID, l.ID, store.Micros(now), store.Micros(sess.ExpiresAt))
	if err != nil {
		return Session{}, fmt.Errorf("create portal session: %w", err)
	}
	return sess, nil
}

// ErrIdle is ErrNoSession because the session was idle too long (the page
// says so).
var ErrIdle = fmt.Errorf("%w: idle", ErrNoSession)

// Session returns the live session of a cookie token on the portal
// message of a link token, and records the activity. A session of
// another message, an idle, expired or revoked one is ErrNoSession (ErrIdle
// when idle); a message that expired or was recalled meanwhile is
// ErrExpired or ErrRecalled.
func (s *Service) Session(ctx context.Context, linkToken, cookie string) (Session, error) {
	l, err := s.Open(ctx, linkToken)
	if err != nil {
		return Session{}, err
	}
	if cookie == "" || len(cookie) > 64 {
		return Session{}, ErrNoSession
	}
	var sess Session
	var seen, expires, revoked int64
	err = s.db.Reader().QueryRow(ctx, `SELECT id, last_seen_at, expires_at, COALESCE(revoked_at, 0) FROM portal_sessions
		WHERE token_hash = $1 AND account_id = $2 AND portal_message_id = $3`, hashToken(cookie), l.AccountID, l.ID).
		Scan(&sess.ID, &seen, &expires, &revoked)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("portal session: %w", err)
	}
	now := s.now()
	if revoked != 0 || !now.Before(store.FromMicros(expires)) {
		return Session{}, ErrNoSession
	}
	if now.Sub(store.FromMicros(seen)) >= s.opts.IdleTimeout {
		s.endIdle(ctx, l, sess.ID, now)
		return Session{}, ErrIdle
	}
	if _, err := s.db.Writer().Exec(ctx, "UPDATE portal_sessions SET last_seen_at = $1 WHERE id = $2 AND account_id = $3",
		store.Micros(now), sess.ID, l.AccountID); err != nil {
		return Session{}, fmt.Errorf("touch portal session: %w", err)
	}
	sess.AccountID, sess.PortalID, sess.MessageID, sess.RcptIndex = l.AccountID, l.ID, l.MessageID, l.RcptIndex
	sess.Recipient, sess.Sender, sess.ExpiresAt, sess.token = l.Recipient, l.Sender, store.FromMicros(expires), cookie
	return sess, nil
}

// endIdle revokes an idle session and records the idle sign-out once.
func (s *Service) endIdle(ctx context.Context, l Link, sessionID string, now time.Time) {
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		n, err := tx.Exec(ctx, "UPDATE portal_sessions SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
			store.Micros(now), sessionID, l.AccountID)
		if err != nil || n == 0 {
			return err
		}
		if err := event(ctx, tx, l.AccountID, l.MessageID, l.RcptIndex, EventIdleTimeout, now, ""); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, l.AccountID, Actor{Kind: string(auth.ActorSystem), ID: "portal"}, "portal.idle_timeout", l.ID, "success",
			map[string]string{"session": sessionID})
	})
	if err != nil {
		s.opts.Logger.ErrorContext(ctx, "end idle portal session", "error", err)
	}
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, sess Session, c Client) error {
	now := s.now()
	return s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE portal_sessions SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
			store.Micros(now), sess.ID, sess.AccountID); err != nil {
			return err
		}
		if err := event(ctx, tx, sess.AccountID, sess.MessageID, sess.RcptIndex, EventSignedOut, now, ""); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, sess.AccountID, recipientActor(sess.PortalID, c.SourceIP, c.RequestID), "portal.signed_out",
			sess.PortalID, "success", map[string]string{"session": sess.ID})
	})
}

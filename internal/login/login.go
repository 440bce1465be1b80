// Package login verifies a person's credentials: email and password
// (argon2id), then a second factor (TOTP or a recovery code), with the
// NIST SP 800-63B §5.2.2 limits on guessing: every failure of either step
// counts against the user, delays grow after a few, and after 100
// consecutive failures the user stays locked until an administrator
// unlocks them. The console's web login and the OAuth password grant both
// go through it, so they share one counter and one audit trail.
package login

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/mfa"
	"github.com/sealpost/sealpost/internal/store"
)

// Errors callers branch on. ErrFailed is the only answer to a wrong email,
// a wrong password, a disabled user and a locked user alike, so a caller
// learns nothing about which; ErrBadCode likewise covers every refused
// second factor.
var (
	ErrFailed  = errors.New("login: invalid email or password")
	ErrBadCode = errors.New("login: invalid code")
)

// Guessing limits (NIST SP 800-63B §5.2.2: at most 100 consecutive
// failures; delays before that).
const (
	// FreeAttempts is how many consecutive failures cost no delay.
	FreeAttempts = 5
	// MaxDelay caps the delay imposed after a failure.
	MaxDelay = 15 * time.Minute
	// LockAfter is the number of consecutive failures after which the user
	// is locked until an administrator unlocks them.
	LockAfter = 100
)

// lockedForever is the locked_until of a hard lock.
const lockedForever = math.MaxInt64

// User is a person whose password was accepted.
type User struct {
	ID        string
	AccountID string
	Email     string
	Role      string
	// MFAEnrolled: the user has a confirmed TOTP enrolment, so a second
	// factor must follow the password.
	MFAEnrolled bool
}

// Attempt is one password login.
type Attempt struct {
	// AccountID, when set, restricts the login to that account's users
	// (the password grant: the client's account).
	AccountID string
	Email     string
	Password  string
	// Channel names where the attempt came from ("console",
	// "password_grant"), for the audit log.
	Channel   string
	SourceIP  string
	RequestID string
}

// Service verifies logins.
type Service struct {
	db  *store.Store
	mfa *mfa.Manager
	log *audit.Log
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns a Service.
func New(db *store.Store, m *mfa.Manager, log *audit.Log) *Service {
	return &Service{db: db, mfa: m, log: log, Now: time.Now}
}

// dummyHash is verified for unknown emails so that they cost the same
// argon2id work as known ones.
var dummyHash = func() string {
	h, err := auth.HashPassword("sealpost-login-dummy")
	if err != nil {
		panic(err)
	}
	return h
}()

// candidate is a user row as the login needs it.
type candidate struct {
	User
	hash          string
	disabled      bool
	accountActive bool
	failed        int
	lockedUntil   int64
}

// Password checks an email and password. On success the caller must
// still ask for the second factor when User.MFAEnrolled, and call
// Succeeded once the login is complete.
func (s *Service) Password(ctx context.Context, a Attempt) (User, error) {
	email, ok := normalizeEmail(a.Email)
	var c candidate
	var err error
	if ok {
		c, err = s.load(ctx, email)
	}
	if !ok || errors.Is(err, store.ErrNotFound) || (err == nil && a.AccountID != "" && c.AccountID != a.AccountID) {
		_, _ = auth.VerifyPassword(dummyHash, a.Password)
		return User{}, ErrFailed
	}
	if err != nil {
		return User{}, err
	}
	match, verr := auth.VerifyPassword(c.hash, a.Password)
	if verr != nil {
		return User{}, fmt.Errorf("verify password: %w", verr)
	}
	reason := ""
	switch {
	case c.lockedUntil > store.Micros(s.Now()):
		// Refused without counting: a locked user is not pushed further
		// towards the hard lock by someone hammering the door.
		reason = "locked"
	case !match:
		reason = "wrong password"
	case c.disabled:
		reason = "user disabled"
	case !c.accountActive:
		reason = "account inactive"
	}
	if reason != "" {
		if err := s.fail(ctx, c.User, a.Channel, a.SourceIP, a.RequestID, reason, reason == "wrong password"); err != nil {
			return User{}, err
		}
		return User{}, ErrFailed
	}
	return c.User, nil
}

// SecondFactor checks a TOTP code, or a recovery code (longer, with
// dashes), for a user whose password was accepted. Each code works once.
func (s *Service) SecondFactor(ctx context.Context, u User, code, channel, sourceIP, requestID string) error {
	var locked int64
	if err := s.db.Reader().QueryRow(ctx, "SELECT COALESCE(locked_until, 0) FROM users WHERE account_id = $1 AND id = $2",
		u.AccountID, u.ID).Scan(&locked); err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	if locked > store.Micros(s.Now()) {
		return errors.Join(ErrBadCode, s.fail(ctx, u, channel, sourceIP, requestID, "locked", false))
	}
	code = strings.TrimSpace(code)
	method := "totp"
	var err error
	if len(code) > 8 {
		method = "recovery_code"
		err = s.mfa.UseRecoveryCode(ctx, u.AccountID, u.ID, code)
	} else {
		err = s.mfa.Verify(ctx, u.AccountID, u.ID, code)
	}
	if errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfa.ErrNotEnrolled) {
		return errors.Join(ErrBadCode, s.fail(ctx, u, channel, sourceIP, requestID, "wrong "+strings.ReplaceAll(method, "_", " "), true))
	}
	if err != nil {
		return err
	}
	return s.record(ctx, u, "mfa.verified", channel, sourceIP, requestID, audit.OutcomeSuccess, map[string]string{"method": method})
}

// Succeeded completes a login: it clears the failure count and audits the
// login.
func (s *Service) Succeeded(ctx context.Context, u User, channel, sourceIP, requestID string) error {
	if _, err := s.db.Writer().Exec(ctx, `UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $1
		WHERE account_id = $2 AND id = $3`, store.Micros(s.Now()), u.AccountID, u.ID); err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return s.record(ctx, u, "login.succeeded", channel, sourceIP, requestID, audit.OutcomeSuccess,
		map[string]string{"mfa": strconv.FormatBool(u.MFAEnrolled)})
}

// fail audits a refused attempt and, when count is set, adds it to the
// user's consecutive failures and sets the delay the next attempt waits.
func (s *Service) fail(ctx context.Context, u User, channel, sourceIP, requestID, reason string, count bool) error {
	details := map[string]string{"reason": reason}
	if count {
		var failed int
		err := s.db.Writer().QueryRow(ctx, `UPDATE users SET failed_logins = failed_logins + 1
			WHERE account_id = $1 AND id = $2 RETURNING failed_logins`, u.AccountID, u.ID).Scan(&failed)
		if err != nil {
			return fmt.Errorf("count failed login: %w", err)
		}
		if until, ok := lockFor(failed, s.Now()); ok {
			if _, err := s.db.Writer().Exec(ctx, "UPDATE users SET locked_until = $1 WHERE account_id = $2 AND id = $3",
				until, u.AccountID, u.ID); err != nil {
				return fmt.Errorf("delay logins: %w", err)
			}
		}
		details["consecutive_failures"] = strconv.Itoa(failed)
		if failed == LockAfter {
			details["locked"] = "true"
		}
	}
	return s.record(ctx, u, "login.failed", channel, sourceIP, requestID, audit.OutcomeFailure, details)
}

// lockFor returns the locked_until (micros) after the failed-th
// consecutive failure: nothing for the first FreeAttempts, then a delay
// doubling from one second up to MaxDelay, and a hard lock at LockAfter.
func lockFor(failed int, now time.Time) (int64, bool) {
	switch {
	case failed >= LockAfter:
		return lockedForever, true
	case failed <= FreeAttempts:
		return 0, false
	}
	delay := MaxDelay
	if shift := failed - FreeAttempts - 1; shift < 20 {
		delay = min(time.Second<<shift, MaxDelay)
	}
	return store.Micros(now.Add(delay)), true
}

func (s *Service) record(ctx context.Context, u User, action, channel, sourceIP, requestID, outcome string, details map[string]string) error {
	details["channel"] = channel
	_, err := s.log.Append(ctx, audit.Event{
		AccountID: u.AccountID, ActorKind: string(auth.ActorUser), ActorID: u.ID,
		Action: action, Target: "user/" + u.ID, Outcome: outcome,
		SourceIP: sourceIP, RequestID: requestID, Details: details,
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

func (s *Service) load(ctx context.Context, email string) (candidate, error) {
	var c candidate
	var status string
	var confirmed int64
	err := s.db.Reader().QueryRow(ctx, `SELECT u.id, u.account_id, u.email, u.role, u.password_hash, u.disabled,
		u.failed_logins, COALESCE(u.locked_until, 0), COALESCE(u.totp_confirmed_at, 0), a.status
		FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.email = $1`, email).
		Scan(&c.ID, &c.AccountID, &c.Email, &c.Role, &c.hash, &c.disabled, &c.failed, &c.lockedUntil, &confirmed, &status)
	if err != nil {
		return candidate{}, err
	}
	c.MFAEnrolled = confirmed != 0
	c.accountActive = status == "active"
	return c, nil
}

// normalizeEmail lower-cases a bare address; anything else (display
// names, control characters, NUL, newlines, overlong input) cannot name a
// user.
func normalizeEmail(s string) (string, bool) {
	if len(s) == 0 || len(s) > 254 || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", false
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s {
		return "", false
	}
	return strings.ToLower(s), true
}

// Package mfa implements TOTP second factors (RFC 6238) with single-use
// codes: enrolment (secret, otpauth:// URL, QR code), confirmation,
// verification, and hashed single-use recovery codes. A code is accepted
// only if its time-step is later than the last step accepted for the user,
// and the step advances with an atomic compare-and-set, so a code — and any
// code of an earlier or equal step — works exactly once, even when two
// requests race with it. Codes from future steps are refused.
package mfa

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// RFC 6238 parameters every authenticator app supports.
const (
	period = 30 * time.Second
	digits = otp.DigitsSix
)

// RecoveryCodes is how many recovery codes a confirmation issues.
const RecoveryCodes = 10

// Errors callers branch on. ErrInvalidCode covers wrong, reused, stale and
// future codes alike, so a caller cannot tell them apart.
var (
	ErrInvalidCode  = errors.New("mfa: invalid code")
	ErrNotEnrolled  = errors.New("mfa: not enrolled")
	ErrAlreadyReady = errors.New("mfa: already confirmed")
)

// Manager enrols and verifies second factors.
type Manager struct {
	db    *store.Store
	vault *vault.Vault
	// Issuer names the service in authenticator apps.
	Issuer string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns a Manager.
func New(db *store.Store, v *vault.Vault, issuer string) *Manager {
	return &Manager{db: db, vault: v, Issuer: issuer, Now: time.Now}
}

// Enrolment is what a user scans or types into an authenticator app.
type Enrolment struct {
	Secret string // base32, for manual entry
	URL    string // otpauth://totp/...
	QRPNG  []byte // the URL as a QR code
}

func secretAD(userID string) []byte { return []byte("users/" + userID + "/totp_secret") }

// Enrol creates (or replaces, while unconfirmed) the user's TOTP secret.
func (m *Manager) Enrol(ctx context.Context, accountID, userID, accountName string) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: m.Issuer, AccountName: accountName, Period: uint(period / time.Second), Digits: digits})
	if err != nil {
		return Enrolment{}, fmt.Errorf("generate totp secret: %w", err)
	}
	sealed, err := m.vault.Seal(ctx, accountID, []byte(key.Secret()), secretAD(userID))
	if err != nil {
		return Enrolment{}, err
	}
	n, err := m.db.Writer().Exec(ctx, `UPDATE users SET totp_secret_sealed = $1, totp_last_step = 0
		WHERE account_id = $2 AND id = $3 AND totp_confirmed_at IS NULL`, sealed, accountID, userID)
	if err != nil {
		return Enrolment{}, fmt.Errorf("store totp secret: %w", err)
	}
	if n == 0 {
		return Enrolment{}, ErrAlreadyReady
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return Enrolment{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}, nil
}

// Confirm activates an enrolment with a first valid code and returns the
// recovery codes, shown once and stored hashed.
func (m *Manager) Confirm(ctx context.Context, accountID, userID, code string) ([]string, error) {
	if err := m.verify(ctx, accountID, userID, code, false); err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodes)
	err := m.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE users SET totp_confirmed_at = $1 WHERE account_id = $2 AND id = $3",
			store.Micros(m.Now()), accountID, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM recovery_codes WHERE account_id = $1 AND user_id = $2", accountID, userID); err != nil {
			return err
		}
		for i := range codes {
			c, err := newRecoveryCode()
			if err != nil {
				return err
			}
			codes[i] = c
			if _, err := tx.Exec(ctx, "INSERT INTO recovery_codes (account_id, user_id, code_hash) VALUES ($1, $2, $3)",
				accountID, userID, hashCode(c)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("confirm totp: %w", err)
	}
	return codes, nil
}

// Enabled reports whether the user has a confirmed enrolment.
func (m *Manager) Enabled(ctx context.Context, accountID, userID string) (bool, error) {
	var confirmed int64
	err := m.db.Reader().QueryRow(ctx, "SELECT COALESCE(totp_confirmed_at, 0) FROM users WHERE account_id = $1 AND id = $2",
		accountID, userID).Scan(&confirmed)
	if err != nil {
		return false, fmt.Errorf("load totp: %w", err)
	}
	return confirmed != 0, nil
}

// Verify checks a code of a confirmed enrolment, once.
func (m *Manager) Verify(ctx context.Context, accountID, userID, code string) error {
	return m.verify(ctx, accountID, userID, code, true)
}

func (m *Manager) verify(ctx context.Context, accountID, userID, code string, confirmed bool) error {
	var sealed []byte
	var confirmedAt, lastStep int64
	err := m.db.Reader().QueryRow(ctx, `SELECT totp_secret_sealed, COALESCE(totp_confirmed_at, 0), totp_last_step
		FROM users WHERE account_id = $1 AND id = $2`, accountID, userID).Scan(&sealed, &confirmedAt, &lastStep)
	if err != nil {
		return fmt.Errorf("load totp: %w", err)
	}
	if sealed == nil || (confirmed && confirmedAt == 0) {
		return ErrNotEnrolled
	}
	if !confirmed && confirmedAt != 0 {
		return ErrAlreadyReady
	}
	secret, err := m.vault.Open(ctx, accountID, sealed, secretAD(userID))
	if err != nil {
		return err
	}
	step, ok := matchStep(string(secret), strings.TrimSpace(code), m.Now())
	if !ok || step <= lastStep {
		return ErrInvalidCode
	}
	// Compare-and-set: of two requests racing with one code, one advances
	// the step and the other finds nothing to update.
	n, err := m.db.Writer().Exec(ctx, "UPDATE users SET totp_last_step = $1 WHERE account_id = $2 AND id = $3 AND totp_last_step < $1",
		step, accountID, userID)
	if err != nil {
		return fmt.Errorf("record totp step: %w", err)
	}
	if n == 0 {
		return ErrInvalidCode
	}
	return nil
}

// matchStep returns the time-step code belongs to: the current step or
// the one before (a code typed as the period turned), never a future one.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	if len(code) != digits.Length() {
		return 0, false
	}
	current := now.Unix() / int64(period/time.Second)
	for _, step := range []int64{current, current - 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*int64(period/time.Second), 0),
			totp.ValidateOpts{Period: uint(period / time.Second), Digits: digits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// UseRecoveryCode accepts an unused recovery code once.
func (m *Manager) UseRecoveryCode(ctx context.Context, accountID, userID, code string) error {
	normalized := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	n, err := m.db.Writer().Exec(ctx, `UPDATE recovery_codes SET used_at = $1
		WHERE account_id = $2 AND user_id = $3 AND code_hash = $4 AND used_at IS NULL`,
		store.Micros(m.Now()), accountID, userID, hashCode(normalized))
	if err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	if n == 0 {
		return ErrInvalidCode
	}
	return nil
}

// newRecoveryCode returns 80 random bits as 16 base32 characters in four
// groups (XXXX-XXXX-XXXX-XXXX).
func newRecoveryCode() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	s := base32.StdEncoding.EncodeToString(b[:])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16], nil
}

func hashCode(code string) []byte {
	normalized := strings.ToUpper(strings.ReplaceAll(code, "-", ""))
	h := sha256.Sum256([]byte(normalized))
	return h[:]
}

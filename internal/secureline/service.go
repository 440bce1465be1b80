package secureline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/store"
)

// Options configure a Service. The zero value works: no keys are known,
// TLS is never verified (so forced TLS means the portal), probe results
// live an hour.
type Options struct {
	// Keys finds recipients' PGP keys and S/MIME certificates; nil: none.
	Keys KeyFinder
	// TLS probes destination domains; nil: TLS is never verified.
	TLS TLSProber
	// Audit records settings changes; nil records nothing.
	Audit *audit.Log
	// Scanner scans preflight content for PHI; nil: content given to a
	// preflight counts as PHI (fail closed).
	Scanner *dlp.Scanner
	// Scanners, when set, gives each account's own scanner (its clinical
	// terms and MRN patterns) and is used instead of Scanner.
	Scanners AccountScanners
	// Policy evaluates the account's policy; nil: allow, no floor.
	Policy PolicyFunc
	// ProbeTTL, ProbeErrorTTL and ProbeTimeout tune the TLS capability
	// cache (defaults DefaultProbeTTL, DefaultProbeErrorTTL,
	// DefaultProbeTimeout).
	ProbeTTL      time.Duration
	ProbeErrorTTL time.Duration
	ProbeTimeout  time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service holds the accounts' settings and answers decisions.
type Service struct {
	db   *store.Store
	opts Options
	tls  *tlsCache
}

// New returns a Service over db (tables secureline_settings and
// message_recipients).
func New(db *store.Store, opts Options) *Service {
	if opts.ProbeTTL <= 0 {
		opts.ProbeTTL = DefaultProbeTTL
	}
	if opts.ProbeErrorTTL <= 0 {
		opts.ProbeErrorTTL = DefaultProbeErrorTTL
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = DefaultProbeTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{db: db, opts: opts, tls: &tlsCache{prober: opts.TLS, ttl: opts.ProbeTTL, errTTL: opts.ProbeErrorTTL,
		timeout: opts.ProbeTimeout, now: opts.Now, entries: map[string]cacheEntry{}, inflight: map[string]*probeCall{}}}
}

// Settings are an account's SecureLine settings.
type Settings struct {
	Mode       Mode   `json:"mode"`
	SubjectTag string `json:"subject_tag"`
	// WKDEnabled lets recipients' PGP keys be looked up in their
	// domain's Web Key Directory when none is uploaded (package wkd).
	// Off by default: a lookup reaches the recipient's domain.
	WKDEnabled bool `json:"wkd_enabled"`
}

// DefaultSettings are the settings of an account that never set any.
var DefaultSettings = Settings{Mode: DefaultMode, SubjectTag: DefaultSubjectTag}

// ErrInvalid wraps a settings validation failure; its message names the
// field and the rule, never the value.
var ErrInvalid = errors.New("secureline: invalid settings")

// AccountScanners returns the DLP scanner built from an account's
// settings (package dlpsettings).
type AccountScanners interface {
	Scanner(ctx context.Context, accountID string) (*dlp.Scanner, error)
}

// FieldError is a settings value that breaks a rule.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes a FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Validate checks st.
func (st Settings) Validate() error {
	if !st.Mode.Valid() {
		return &FieldError{Field: "mode", Message: "must be opportunistic, forced_tls, tls_exclusive or portal_always"}
	}
	if ValidateSubjectTag(st.SubjectTag) != nil {
		return &FieldError{Field: "subject_tag", Message: "must be 1 to 32 printable characters without leading or trailing spaces"}
	}
	return nil
}

// Settings returns the account's settings (DefaultSettings when unset).
func (s *Service) Settings(ctx context.Context, accountID string) (Settings, error) {
	var st Settings
	var mode string
	err := s.db.Reader().QueryRow(ctx, "SELECT mode, subject_tag, wkd_enabled FROM secureline_settings WHERE account_id = $1", accountID).
		Scan(&mode, &st.SubjectTag, &st.WKDEnabled)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultSettings, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("secureline settings: %w", err)
	}
	st.Mode = Mode(mode)
	return st, nil
}

// SetSettings replaces the actor's account's settings and audits the
// change (secureline.settings_updated) in the same transaction.
func (s *Service) SetSettings(ctx context.Context, actor account.Actor, st Settings) error {
	if err := st.Validate(); err != nil {
		return err
	}
	accountID := actor.Principal.AccountID
	return s.db.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO secureline_settings (account_id, mode, subject_tag, wkd_enabled, updated_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account_id) DO UPDATE SET mode = $2, subject_tag = $3, wkd_enabled = $4, updated_at = $5`,
			accountID, string(st.Mode), st.SubjectTag, st.WKDEnabled, store.Micros(s.opts.Now()))
		if err != nil {
			return fmt.Errorf("save secureline settings: %w", err)
		}
		if s.opts.Audit == nil {
			return nil
		}
		_, err = s.opts.Audit.AppendTx(ctx, tx, audit.Event{AccountID: accountID, ActorKind: string(actor.Principal.ActorKind),
			ActorID: actor.Principal.ActorID, Action: "secureline.settings_updated", Target: "secureline-settings",
			Outcome: audit.OutcomeSuccess, SourceIP: actor.SourceIP, RequestID: actor.RequestID,
			Details: map[string]string{"mode": string(st.Mode), "subject_tag": st.SubjectTag, "wkd_enabled": strconv.FormatBool(st.WKDEnabled)}})
		if err != nil {
			return fmt.Errorf("audit secureline.settings_updated: %w", err)
		}
		return nil
	})
}

// Capabilities finds what address (at domain, lower case) can receive
// now: keys on file, and the domain's TLS (cached).
func (s *Service) Capabilities(ctx context.Context, accountID, address, domain string) (Capabilities, error) {
	var caps Capabilities
	if k := s.opts.Keys; k != nil {
		cert, err := k.RecipientSMIME(ctx, accountID, address)
		if err != nil {
			return Capabilities{}, fmt.Errorf("S/MIME certificate lookup: %w", err)
		}
		caps.SMIME = cert != nil && cert.Cert != nil && s.opts.Now().Before(cert.Cert.NotAfter)
		key, source, err := recipientPGP(ctx, k, accountID, address)
		if err != nil {
			return Capabilities{}, fmt.Errorf("PGP key lookup: %w", err)
		}
		caps.PGP = key != nil && (key.Expires.IsZero() || s.opts.Now().Before(key.Expires))
		if caps.PGP {
			caps.PGPSource = source
		}
	}
	res := s.tls.get(ctx, domain)
	caps.TLS, caps.TLSDetail = res.Verified, res.Detail
	return caps, nil
}

// recipientPGP asks k for the recipient's PGP key, and where it came
// from when k can say.
func recipientPGP(ctx context.Context, k KeyFinder, accountID, address string) (*pgpmime.PublicKey, KeySource, error) {
	if sk, ok := k.(SourcedKeyFinder); ok {
		return sk.RecipientPGPSource(ctx, accountID, address)
	}
	key, err := k.RecipientPGP(ctx, accountID, address)
	return key, "", err
}

// RecordTx stores the decision for recipient rcptIndex of the account's
// message, in the caller's transaction (the one that accepts the
// message, or the one that applies a Fallback). It is shown by the
// message status API.
func RecordTx(ctx context.Context, tx store.Tx, accountID, messageID string, rcptIndex int, d Decision) error {
	reasons, err := json.Marshal(d.Reasons)
	if err != nil {
		return err
	}
	n, err := tx.Exec(ctx, `UPDATE message_recipients SET enc_method = $1, enc_reasons = $2
		WHERE account_id = $3 AND message_id = $4 AND rcpt_index = $5`, string(d.Method), string(reasons), accountID, messageID, rcptIndex)
	if err != nil {
		return fmt.Errorf("record encryption decision: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("record encryption decision: recipient %d of message %s: %w", rcptIndex, messageID, store.ErrNotFound)
	}
	return nil
}

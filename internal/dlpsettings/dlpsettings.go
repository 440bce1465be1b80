// Package dlpsettings owns an account's DLP settings — its clinical terms
// (diagnoses, drugs), its medical record number formats and its score
// threshold — and a per-node cache of the compiled dlp.Scanner for each
// account, so the send path and the policy dry run scan with the
// account's detectors. It does not scan (package dlp) nor decide (package
// policy).
package dlpsettings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/store"
)

// MRNPattern is one of the account's medical record number formats.
type MRNPattern struct {
	// Name labels the format for people (1 to 100 characters).
	Name string `json:"name"`
	// Pattern is an RE2 regular expression (Go syntax) matching one
	// record number; RE2 runs in linear time, so no pattern can stall a
	// scan.
	Pattern string `json:"pattern"`
	// Anywhere lets the pattern match without a nearby context word
	// ("MRN", "chart"...): only for distinctive formats.
	Anywhere bool `json:"anywhere"`
}

// Settings is an account's DLP settings.
type Settings struct {
	Terms       []string     `json:"terms"`
	MRNPatterns []MRNPattern `json:"mrn_patterns"`
	// Threshold is the score from which a message holds PHI; 0 means
	// dlp's default (0.5).
	Threshold float64 `json:"threshold"`
	// Version counts the replaces (0: never set).
	Version int64 `json:"version"`
	// UpdatedAt is nil while the account never set any.
	UpdatedAt *time.Time `json:"updated_at"`
}

// InvalidError is settings dlp.New refuses, naming the field (such as
// "terms[3]" or "mrn_patterns[0]").
type InvalidError struct{ Field, Message string }

func (e *InvalidError) Error() string { return "dlp settings: " + e.Field + ": " + e.Message }

const maxNameLen = 100

// maxCached bounds the scanners one node keeps; beyond it the cache is
// emptied and refills on demand.
const maxCached = 10000

// Options tunes a Service. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service stores the settings and hands out compiled scanners.
type Service struct {
	db    *store.Store
	audit *audit.Log
	now   func() time.Time
	def   *dlp.Scanner

	mu    sync.Mutex
	cache map[string]cached
	// compiles counts scanner builds, for tests of the cache.
	compiles int
}

type cached struct {
	version int64
	scanner *dlp.Scanner
}

// New returns a Service over db; replaces are audited on log (nil audits
// nothing, for tests of other packages).
func New(db *store.Store, log *audit.Log, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	def, err := dlp.New(dlp.Options{})
	if err != nil {
		return nil, fmt.Errorf("default dlp scanner: %w", err)
	}
	return &Service{db: db, audit: log, now: opts.Now, def: def, cache: map[string]cached{}}, nil
}

// Get returns the account's settings (empty lists and version 0 when it
// never set any).
func (s *Service) Get(ctx context.Context, accountID string) (Settings, error) {
	var terms, pats string
	var micros int64
	st := Settings{Terms: []string{}, MRNPatterns: []MRNPattern{}}
	err := s.db.Reader().QueryRow(ctx, `SELECT terms, mrn_patterns, threshold, version, updated_at
		FROM dlp_settings WHERE account_id = $1`, accountID).Scan(&terms, &pats, &st.Threshold, &st.Version, &micros)
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("read dlp settings: %w", err)
	}
	if err := json.Unmarshal([]byte(terms), &st.Terms); err != nil {
		return Settings{}, fmt.Errorf("decode dlp terms: %w", err)
	}
	if err := json.Unmarshal([]byte(pats), &st.MRNPatterns); err != nil {
		return Settings{}, fmt.Errorf("decode dlp mrn patterns: %w", err)
	}
	at := store.FromMicros(micros)
	st.UpdatedAt = &at
	return st, nil
}

// Replace sets the account's settings as a whole, after dlp.New accepts
// them (an *InvalidError otherwise), bumps the version and audits the
// change with counts only (never the terms or patterns).
func (s *Service) Replace(ctx context.Context, actor account.Actor, in Settings) (Settings, error) {
	if in.Terms == nil {
		in.Terms = []string{}
	}
	if in.MRNPatterns == nil {
		in.MRNPatterns = []MRNPattern{}
	}
	if _, err := compile(in); err != nil {
		return Settings{}, err
	}
	terms, err := json.Marshal(in.Terms)
	if err != nil {
		return Settings{}, fmt.Errorf("encode dlp terms: %w", err)
	}
	pats, err := json.Marshal(in.MRNPatterns)
	if err != nil {
		return Settings{}, fmt.Errorf("encode dlp mrn patterns: %w", err)
	}
	accountID := actor.Principal.AccountID
	now := s.now().UTC().Truncate(time.Microsecond)
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		var before Settings
		var bt, bp string
		err := tx.QueryRow(ctx, "SELECT terms, mrn_patterns, version FROM dlp_settings WHERE account_id = $1", accountID).
			Scan(&bt, &bp, &before.Version)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("read dlp settings: %w", err)
		default:
			_ = json.Unmarshal([]byte(bt), &before.Terms)
			_ = json.Unmarshal([]byte(bp), &before.MRNPatterns)
		}
		in.Version = before.Version + 1
		if _, err := tx.Exec(ctx, `INSERT INTO dlp_settings (account_id, terms, mrn_patterns, threshold, version, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (account_id) DO UPDATE SET terms = $2, mrn_patterns = $3, threshold = $4, version = $5, updated_at = $6`,
			accountID, string(terms), string(pats), in.Threshold, in.Version, store.Micros(now)); err != nil {
			return fmt.Errorf("write dlp settings: %w", err)
		}
		return s.auditReplace(ctx, tx, actor, before, in)
	})
	if err != nil {
		return Settings{}, err
	}
	in.UpdatedAt = &now
	return in, nil
}

func (s *Service) auditReplace(ctx context.Context, tx store.Tx, actor account.Actor, before, after Settings) error {
	if s.audit == nil {
		return nil
	}
	_, err := s.audit.AppendTx(ctx, tx, audit.Event{AccountID: actor.Principal.AccountID, ActorKind: string(actor.Principal.ActorKind),
		ActorID: actor.Principal.ActorID, Action: "dlp.settings_updated", Target: "dlp-settings", Outcome: audit.OutcomeSuccess,
		SourceIP: actor.SourceIP, RequestID: actor.RequestID,
		Details: map[string]string{
			"previous_terms": strconv.Itoa(len(before.Terms)), "terms": strconv.Itoa(len(after.Terms)),
			"previous_mrn_patterns": strconv.Itoa(len(before.MRNPatterns)), "mrn_patterns": strconv.Itoa(len(after.MRNPatterns)),
			"version": strconv.FormatInt(after.Version, 10),
		}})
	if err != nil {
		return fmt.Errorf("audit dlp.settings_updated: %w", err)
	}
	return nil
}

// compile builds the scanner for st, mapping dlp's OptionError and
// checking the names dlp does not know.
func compile(st Settings) (*dlp.Scanner, error) {
	opts := dlp.Options{Terms: st.Terms, Threshold: st.Threshold}
	for i, p := range st.MRNPatterns {
		if n := utf8.RuneCountInString(p.Name); n == 0 || n > maxNameLen {
			return nil, &InvalidError{Field: fmt.Sprintf("mrn_patterns[%d].name", i), Message: fmt.Sprintf("1 to %d characters", maxNameLen)}
		}
		opts.MRNPatterns = append(opts.MRNPatterns, dlp.MRNPattern{Pattern: p.Pattern, Anywhere: p.Anywhere})
	}
	sc, err := dlp.New(opts)
	var oe *dlp.OptionError
	if errors.As(err, &oe) {
		field := oe.Field
		if strings.HasPrefix(field, "mrn_patterns[") {
			field += ".pattern"
		}
		return nil, &InvalidError{Field: field, Message: oe.Message}
	}
	if err != nil {
		return nil, fmt.Errorf("dlp scanner: %w", err)
	}
	return sc, nil
}

// Default returns dlp's default scanner (the one an account without
// settings gets), built once per Service, for callers that scan without
// an account's settings or when they cannot be read.
func (s *Service) Default() *dlp.Scanner { return s.def }

// Scanner returns the scanner for the account's current settings. It
// reads the settings' version (one primary-key read) on every call and
// rebuilds the scanner only when the version changed, so a replace on
// any node is seen by every node's next scan. An account that never set
// any gets dlp's default scanner.
func (s *Service) Scanner(ctx context.Context, accountID string) (*dlp.Scanner, error) {
	var version int64
	err := s.db.Reader().QueryRow(ctx, "SELECT version FROM dlp_settings WHERE account_id = $1", accountID).Scan(&version)
	if errors.Is(err, store.ErrNotFound) {
		return s.def, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dlp settings version: %w", err)
	}
	s.mu.Lock()
	c, ok := s.cache[accountID]
	s.mu.Unlock()
	if ok && c.version == version {
		return c.scanner, nil
	}
	st, err := s.Get(ctx, accountID)
	if err != nil {
		return nil, err
	}
	sc, err := compile(st)
	if err != nil {
		// Stored settings passed compile when written; failing now
		// (a newer, stricter dlp) must not let PHI through unscanned.
		return nil, fmt.Errorf("account dlp settings no longer compile: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compiles++
	if len(s.cache) >= maxCached {
		clear(s.cache)
	}
	if cur, ok := s.cache[accountID]; !ok || cur.version < st.Version {
		s.cache[accountID] = cached{version: st.Version, scanner: sc}
	}
	return sc, nil
}

// Compiles reports how many scanners this Service built (for tests and
// metrics).
func (s *Service) Compiles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compiles
}

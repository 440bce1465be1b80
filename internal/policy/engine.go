package policy

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
	"github.com/sealpost/sealpost/internal/store"
)

// Options tunes an Engine. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Scanner scans dry-run messages; nil builds one with dlp's defaults.
	Scanner *dlp.Scanner
	// Scanners gives the account's own scanner (its terms and record
	// number formats; *dlpsettings.Service); nil scans with Scanner.
	Scanners Scanners
}

// Scanners hands out the DLP scanner built from an account's settings.
type Scanners interface {
	Scanner(ctx context.Context, accountID string) (*dlp.Scanner, error)
}

// Engine stores accounts' rules and evaluates them.
type Engine struct {
	db      *store.Store
	audit   *audit.Log
	now     func() time.Time
	scanner *dlp.Scanner
	perAcct Scanners
}

// New returns an Engine over db; policy changes are audited on log (nil
// audits nothing, for tests of other packages).
func New(db *store.Store, log *audit.Log, opts Options) (*Engine, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Scanner == nil {
		sc, err := dlp.New(dlp.Options{})
		if err != nil {
			return nil, fmt.Errorf("dlp scanner: %w", err)
		}
		opts.Scanner = sc
	}
	return &Engine{db: db, audit: log, now: opts.Now, scanner: opts.Scanner, perAcct: opts.Scanners}, nil
}

// Document is an account's whole policy as the API shows it.
type Document struct {
	Rules []Rule `json:"rules"`
	// UpdatedAt is when the rules were last replaced; nil while the
	// account never set any.
	UpdatedAt *time.Time `json:"updated_at"`
}

// Document returns the account's rules in evaluation order.
func (e *Engine) Document(ctx context.Context, accountID string) (Document, error) {
	return document(ctx, e.db.Reader(), accountID)
}

func document(ctx context.Context, q store.Querier, accountID string) (Document, error) {
	rules, err := loadRules(ctx, q, accountID)
	if err != nil {
		return Document{}, err
	}
	doc := Document{Rules: rules}
	var updated int64
	err = q.QueryRow(ctx, `SELECT updated_at FROM dlp_policies WHERE account_id = $1`, accountID).Scan(&updated)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return Document{}, fmt.Errorf("read dlp policy: %w", err)
	default:
		t := store.FromMicros(updated)
		doc.UpdatedAt = &t
	}
	return doc, nil
}

// Load returns the account's policy, ready to decide.
func (e *Engine) Load(ctx context.Context, accountID string) (*Policy, error) {
	rules, err := loadRules(ctx, e.db.Reader(), accountID)
	if err != nil {
		return nil, err
	}
	return &Policy{Rules: rules}, nil
}

// Evaluate returns the decision for one recipient domain. It loads the
// account's rules on every call: a caller deciding for many recipients
// of one message should Load once and call Policy.Decide.
func (e *Engine) Evaluate(ctx context.Context, in Input, recipientDomain string) (Decision, error) {
	if in.AccountID == "" {
		return Decision{}, errors.New("dlp policy: evaluate without an account")
	}
	p, err := e.Load(ctx, in.AccountID)
	if err != nil {
		return Decision{}, err
	}
	return p.Decide(in, recipientDomain), nil
}

func loadRules(ctx context.Context, q store.Querier, accountID string) ([]Rule, error) {
	rows, err := q.Query(ctx, `SELECT id, position, name, description, enabled, conditions, action, min_encryption, created_at, updated_at
		FROM dlp_rules WHERE account_id = $1 ORDER BY position`, accountID)
	if err != nil {
		return nil, fmt.Errorf("load dlp rules: %w", err)
	}
	defer rows.Close()
	rules := []Rule{}
	for rows.Next() {
		var r Rule
		var conds string
		var created, updated int64
		if err := rows.Scan(&r.ID, &r.Position, &r.Name, &r.Description, &r.Enabled, &conds, &r.Action, &r.MinEncryption,
			&created, &updated); err != nil {
			return nil, fmt.Errorf("load dlp rules: %w", err)
		}
		if err := json.Unmarshal([]byte(conds), &r.Conditions); err != nil {
			return nil, fmt.Errorf("load dlp rule %s: conditions: %w", r.ID, err)
		}
		r.CreatedAt, r.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
		rules = append(rules, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load dlp rules: %w", err)
	}
	return rules, nil
}

// Replace validates rules and replaces the actor's account's whole
// ordered list with them in one transaction (an *InvalidError when a rule
// is invalid or names an id the policy does not hold), audited as
// dlp.policy_updated with the old and new rule counts. A rule given with
// the id of an existing rule keeps that id and its creation time.
func (e *Engine) Replace(ctx context.Context, actor account.Actor, in []RuleInput) (Document, error) {
	rules, err := Validate(in)
	if err != nil {
		return Document{}, err
	}
	accountID := actor.Principal.AccountID
	now := e.now().UTC().Truncate(time.Microsecond)
	var doc Document
	err = e.db.InTx(ctx, func(tx store.Tx) error {
		// The policy row first: it serialises concurrent replacements
		// of one account's rules (a row lock on PostgreSQL).
		if _, err := tx.Exec(ctx, `INSERT INTO dlp_policies (account_id, updated_at) VALUES ($1, $2)
			ON CONFLICT (account_id) DO UPDATE SET updated_at = excluded.updated_at`, accountID, store.Micros(now)); err != nil {
			return fmt.Errorf("replace dlp policy: %w", err)
		}
		old, err := loadRules(ctx, tx, accountID)
		if err != nil {
			return err
		}
		created := map[string]time.Time{}
		for _, r := range old {
			created[r.ID] = r.CreatedAt
		}
		var is issues
		for i, r := range rules {
			if _, ok := created[r.ID]; r.ID != "" && !ok {
				is.add(fmt.Sprintf("rules[%d].id", i), "no rule with this id in the policy; leave id out to add a rule")
			}
		}
		if len(is) > 0 {
			return &InvalidError{Issues: is}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM dlp_rules WHERE account_id = $1`, accountID); err != nil {
			return fmt.Errorf("replace dlp policy: %w", err)
		}
		for i, r := range rules {
			if err := insertRule(ctx, tx, accountID, i, r, created, now); err != nil {
				return err
			}
		}
		if doc, err = document(ctx, tx, accountID); err != nil {
			return err
		}
		return e.auditReplace(ctx, tx, actor, len(old), len(rules))
	})
	if err != nil {
		return Document{}, err
	}
	return doc, nil
}

func insertRule(ctx context.Context, tx store.Tx, accountID string, pos int, r RuleInput, created map[string]time.Time, now time.Time) error {
	id, createdAt := r.ID, now
	if id == "" {
		id = store.NewID()
	} else {
		createdAt = created[id]
	}
	conds, err := json.Marshal(r.Conditions)
	if err != nil {
		return fmt.Errorf("encode dlp rule conditions: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO dlp_rules (account_id, id, position, name, description, enabled, conditions, action,
		min_encryption, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		accountID, id, pos, r.Name, r.Description, *r.Enabled, string(conds), string(r.Action), string(r.MinEncryption),
		store.Micros(createdAt), store.Micros(now))
	if err != nil {
		return fmt.Errorf("insert dlp rule: %w", err)
	}
	return nil
}

func (e *Engine) auditReplace(ctx context.Context, tx store.Tx, actor account.Actor, before, after int) error {
	if e.audit == nil {
		return nil
	}
	_, err := e.audit.AppendTx(ctx, tx, audit.Event{AccountID: actor.Principal.AccountID, ActorKind: string(actor.Principal.ActorKind),
		ActorID: actor.Principal.ActorID, Action: "dlp.policy_updated", Target: "dlp-policy", Outcome: audit.OutcomeSuccess,
		SourceIP: actor.SourceIP, RequestID: actor.RequestID,
		Details: map[string]string{"previous_rules": strconv.Itoa(before), "rules": strconv.Itoa(after)}})
	if err != nil {
		return fmt.Errorf("audit dlp.policy_updated: %w", err)
	}
	return nil
}

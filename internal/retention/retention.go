// Package retention owns how long each account keeps PHI-bearing content
// and the sweeper that crypto-shreds what outlived it: the sealed bodies
// of finished messages, portal messages and DLP quarantine. Shredding
// deletes the ciphertext (the account's data key is shared by all its
// records, so the key itself stays); the metadata rows (envelope,
// recipients, events) stay for reporting. Whole-account shredding, which
// destroys the key, belongs to package vault. Content kinds owned by
// other packages (portal, quarantine) plug in as Shredders; this package
// shreds message bodies itself.
package retention

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
)

// Bounds and defaults of every retention period, in days.
const (
	// MinDays: a day, so a sender can still read back what it just sent
	// and a recipient's deferred retries finish first.
	MinDays = 1
	// MaxDays: ten years, beyond any records schedule we know of; keeping
	// PHI longer than that is a mistake, not a policy.
	MaxDays = 3650
	// DefaultMessageBodyDays, DefaultPortalMessageDays and
	// DefaultQuarantineDays apply to an account that set no policy.
	DefaultMessageBodyDays   = 30
	DefaultPortalMessageDays = 30
	DefaultQuarantineDays    = 30
)

// Day is the unit of every retention period.
const Day = 24 * time.Hour

// Policy is an account's retention, in whole days per kind of content.
type Policy struct {
	// MessageBodyDays counts from the moment the message's last
	// recipient reached a final state (delivered, bounced, suppressed,
	// failed, cancelled).
	MessageBodyDays int `json:"message_body_days"`
	// PortalMessageDays counts from when the portal message was stored;
	// the portal reads it at every use, so it also decides whether a
	// stored message is still readable.
	PortalMessageDays int `json:"portal_message_days"`
	// QuarantineDays counts from when the message was quarantined; a
	// hold nobody reviewed by then is rejected.
	QuarantineDays int `json:"quarantine_days"`
	// UpdatedAt is when the account last set its policy; nil while the
	// defaults apply.
	UpdatedAt *time.Time `json:"updated_at"`
}

// DefaultPolicy is the policy of an account that set none.
func DefaultPolicy() Policy {
	return Policy{MessageBodyDays: DefaultMessageBodyDays, PortalMessageDays: DefaultPortalMessageDays, QuarantineDays: DefaultQuarantineDays}
}

// Days returns the policy's period for kind (0 for an unknown kind).
func (p Policy) Days(kind Kind) int {
	switch kind {
	case KindMessageBody:
		return p.MessageBodyDays
	case KindPortalMessage:
		return p.PortalMessageDays
	case KindQuarantine:
		return p.QuarantineDays
	}
	return 0
}

// FieldIssue names one out-of-range field of a Policy.
type FieldIssue struct {
	Field   string
	Message string
}

// InvalidPolicyError lists every out-of-range field of a Policy.
type InvalidPolicyError struct {
	Issues []FieldIssue
}

func (e *InvalidPolicyError) Error() string {
	return fmt.Sprintf("retention policy: %d field(s) out of range", len(e.Issues))
}

// ErrInvalidPolicy is matched (errors.Is) by every *InvalidPolicyError.
var ErrInvalidPolicy = errors.New("retention policy out of range")

// Is makes errors.Is(err, ErrInvalidPolicy) hold.
func (e *InvalidPolicyError) Is(target error) bool { return target == ErrInvalidPolicy }

// Validate reports every period outside [MinDays, MaxDays].
func (p Policy) Validate() error {
	var issues []FieldIssue
	for _, f := range []struct {
		name string
		v    int
	}{{"message_body_days", p.MessageBodyDays}, {"portal_message_days", p.PortalMessageDays}, {"quarantine_days", p.QuarantineDays}} {
		if f.v < MinDays || f.v > MaxDays {
			issues = append(issues, FieldIssue{Field: f.name, Message: fmt.Sprintf("must be between %d and %d days", MinDays, MaxDays)})
		}
	}
	if len(issues) > 0 {
		return &InvalidPolicyError{Issues: issues}
	}
	return nil
}

// Options tunes a Service. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service reads and replaces accounts' retention policies.
type Service struct {
	db    *store.Store
	audit *audit.Log
	now   func() time.Time
}

// New returns a Service over db; policy changes are audited on log (nil
// audits nothing, for tests of other packages).
func New(db *store.Store, log *audit.Log, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{db: db, audit: log, now: opts.Now}
}

// Policy returns the account's policy, DefaultPolicy when it set none.
func (s *Service) Policy(ctx context.Context, accountID string) (Policy, error) {
	return policy(ctx, s.db.Reader(), accountID)
}

func policy(ctx context.Context, q store.Querier, accountID string) (Policy, error) {
	var p Policy
	var updated int64
	err := q.QueryRow(ctx, `SELECT message_body_days, portal_message_days, quarantine_days, updated_at
		FROM retention_policies WHERE account_id = $1`, accountID).Scan(&p.MessageBodyDays, &p.PortalMessageDays, &p.QuarantineDays, &updated)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultPolicy(), nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("read retention policy: %w", err)
	}
	t := store.FromMicros(updated)
	p.UpdatedAt = &t
	return p, nil
}

// SetPolicy replaces the actor's account's policy (an *InvalidPolicyError
// when a period is out of range) and returns it as stored, audited as
// retention.policy_updated with the old and new periods. A shorter period
// takes effect at the next sweep, also for content already stored.
func (s *Service) SetPolicy(ctx context.Context, actor account.Actor, p Policy) (Policy, error) {
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	accountID := actor.Principal.AccountID
	now := s.now().UTC().Truncate(time.Microsecond)
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		old, err := policy(ctx, tx, accountID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO retention_policies (account_id, message_body_days, portal_message_days, quarantine_days, updated_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account_id) DO UPDATE SET message_body_days = excluded.message_body_days,
				portal_message_days = excluded.portal_message_days, quarantine_days = excluded.quarantine_days,
				updated_at = excluded.updated_at`,
			accountID, p.MessageBodyDays, p.PortalMessageDays, p.QuarantineDays, store.Micros(now))
		if err != nil {
			return fmt.Errorf("set retention policy: %w", err)
		}
		if s.audit == nil {
			return nil
		}
		i := strconv.Itoa
		_, err = s.audit.AppendTx(ctx, tx, audit.Event{AccountID: accountID, ActorKind: string(actor.Principal.ActorKind),
			ActorID: actor.Principal.ActorID, Action: "retention.policy_updated", Target: "retention-policy", Outcome: audit.OutcomeSuccess,
			SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: map[string]string{
				"message_body_days": i(p.MessageBodyDays), "portal_message_days": i(p.PortalMessageDays), "quarantine_days": i(p.QuarantineDays),
				"previous_message_body_days": i(old.MessageBodyDays), "previous_portal_message_days": i(old.PortalMessageDays),
				"previous_quarantine_days": i(old.QuarantineDays)}})
		if err != nil {
			return fmt.Errorf("audit retention.policy_updated: %w", err)
		}
		return nil
	})
	if err != nil {
		return Policy{}, err
	}
	p.UpdatedAt = &now
	return p, nil
}

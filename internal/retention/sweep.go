package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
)

// Kind names a kind of retained content.
type Kind string

// Kinds of content with a retention period.
const (
	// KindMessageBody: sealed bodies of API and relay messages.
	KindMessageBody Kind = "message_body"
	// KindPortalMessage: messages held for recipients in the portal.
	KindPortalMessage Kind = "portal_message"
	// KindQuarantine: messages held by DLP for human review.
	KindQuarantine Kind = "quarantine"
)

// Kinds lists every kind, in sweep order.
var Kinds = []Kind{KindMessageBody, KindPortalMessage, KindQuarantine}

// Shredder destroys one kind of an account's expired content.
type Shredder interface {
	// Shred deletes the sealed content of the account's items of its
	// kind that expired before cutoff, in batches, stopping at deadline.
	// It returns how many items it shredded and whether none are left
	// (false: stopped at the deadline; the next sweep resumes). It must
	// keep every query scoped by accountID and leave metadata in place.
	Shred(ctx context.Context, accountID string, cutoff, deadline time.Time) (n int, done bool, err error)
}

// SweeperOptions tunes a Sweeper. The zero value is usable.
type SweeperOptions struct {
	// Now is the clock retention is measured by (default time.Now).
	Now func() time.Time
	// Budget bounds one sweep's running time (default 30s); what is
	// left waits for the next sweep.
	Budget time.Duration
	// Logger receives one line per sweep, counts only. Nil discards.
	Logger *slog.Logger
	// Registerer receives sealpost_retention_shredded_total. Nil
	// registers nothing.
	Registerer prometheus.Registerer
}

// Sweeper runs every registered Shredder for every account with the
// account's period for that kind.
type Sweeper struct {
	db        *store.Store
	policies  *Service
	audit     *audit.Log
	opts      SweeperOptions
	shredders map[Kind]Shredder
	shredded  *prometheus.CounterVec
	runs      *prometheus.CounterVec
}

// NewSweeper returns a Sweeper shredding message bodies; the portal's and
// the quarantine's shredders (portal.Expiry, messages.QuarantineExpiry)
// join with Register in the composition root. Each sweep is audited on
// log.
func NewSweeper(db *store.Store, policies *Service, log *audit.Log, opts SweeperOptions) (*Sweeper, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Budget <= 0 {
		opts.Budget = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Sweeper{db: db, policies: policies, audit: log, opts: opts, shredders: map[Kind]Shredder{},
		shredded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_retention_shredded_total",
			Help: "Items whose sealed content the retention sweeper deleted, by kind.",
		}, []string{"kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_retention_sweeps_total",
			Help: "Retention sweeps run, by outcome (complete, partial: stopped at its time budget, error).",
		}, []string{"outcome"}),
	}
	for _, k := range Kinds {
		w.shredded.WithLabelValues(string(k))
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{w.shredded, w.runs} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register retention metrics: %w", err)
			}
		}
	}
	w.Register(KindMessageBody, &MessageBodies{DB: db, Now: opts.Now})
	return w, nil
}

// Register makes s the shredder of kind, replacing any before it. Call it
// before the queue starts.
func (w *Sweeper) Register(kind Kind, s Shredder) { w.shredders[kind] = s }

// Report is what one sweep did.
type Report struct {
	Accounts int
	// Shredded counts items by kind, over all accounts.
	Shredded map[Kind]int
	// Complete: nothing due was left (false: the budget ran out).
	Complete bool
}

// Sweep shreds, for each account, what its policy says has expired, and
// audits it: an event on each account's chain that lost content
// (retention.shredded, with counts and cutoffs) and one on the platform
// chain for the sweep (retention.swept). No content, subject or address
// goes into either.
func (w *Sweeper) Sweep(ctx context.Context) (Report, error) {
	deadline := time.Now().Add(w.opts.Budget)
	now := w.opts.Now()
	rep := Report{Shredded: map[Kind]int{}, Complete: true}
	ids, err := w.accountIDs(ctx)
	if err != nil {
		w.runs.WithLabelValues("error").Inc()
		return rep, err
	}
	var errs []error
	for _, id := range ids {
		if !rep.Complete {
			break
		}
		rep.Accounts++
		counts, complete, err := w.sweepAccount(ctx, id, now, deadline)
		for k, n := range counts {
			rep.Shredded[k] += n
		}
		rep.Complete = rep.Complete && complete
		if err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", id, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	if rep.total() > 0 {
		errs = append(errs, w.scrub(ctx))
	}
	errs = append(errs, w.auditSweep(ctx, rep, errors.Join(errs...) != nil))
	err = errors.Join(errs...)
	outcome := "complete"
	switch {
	case err != nil:
		outcome = "error"
	case !rep.Complete:
		outcome = "partial"
	}
	w.runs.WithLabelValues(outcome).Inc()
	w.opts.Logger.Info("retention sweep", "accounts", rep.Accounts, "message_bodies", rep.Shredded[KindMessageBody],
		"portal_messages", rep.Shredded[KindPortalMessage], "quarantine", rep.Shredded[KindQuarantine], "outcome", outcome)
	return rep, err
}

func (r Report) total() int {
	n := 0
	for _, c := range r.Shredded {
		n += c
	}
	return n
}

func (w *Sweeper) accountIDs(ctx context.Context) ([]string, error) {
	rows, err := w.db.Reader().Query(ctx, "SELECT id FROM accounts ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// sweepAccount runs each registered shredder for the account and audits
// what they shredded on the account's chain.
func (w *Sweeper) sweepAccount(ctx context.Context, accountID string, now, deadline time.Time) (map[Kind]int, bool, error) {
	p, err := w.policies.Policy(ctx, accountID)
	if err != nil {
		return nil, false, err
	}
	counts := map[Kind]int{}
	complete := true
	var errs []error
	details := map[string]string{}
	for _, k := range Kinds {
		s, ok := w.shredders[k]
		if !ok || !complete {
			continue
		}
		cutoff := now.Add(-time.Duration(p.Days(k)) * Day)
		n, done, err := s.Shred(ctx, accountID, cutoff, deadline)
		counts[k] = n
		complete = done
		w.shredded.WithLabelValues(string(k)).Add(float64(n))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		if n > 0 {
			details[string(k)] = strconv.Itoa(n)
			details[string(k)+"_cutoff"] = cutoff.UTC().Format(time.RFC3339)
		}
	}
	if len(details) > 0 && w.audit != nil {
		outcome := audit.OutcomeSuccess
		if len(errs) > 0 {
			outcome = audit.OutcomeFailure
		}
		_, err := w.audit.Append(ctx, audit.Event{AccountID: accountID, ActorKind: "system", ActorID: "retention-sweeper",
			Action: "retention.shredded", Target: "retention-policy", Outcome: outcome, Details: details})
		errs = append(errs, err)
	}
	return counts, complete, errors.Join(errs...)
}

// auditSweep records the sweep on the platform chain.
func (w *Sweeper) auditSweep(ctx context.Context, rep Report, failed bool) error {
	if w.audit == nil {
		return nil
	}
	outcome := audit.OutcomeSuccess
	if failed {
		outcome = audit.OutcomeFailure
	}
	details := map[string]string{"accounts": strconv.Itoa(rep.Accounts), "complete": strconv.FormatBool(rep.Complete)}
	for _, k := range Kinds {
		details[string(k)] = strconv.Itoa(rep.Shredded[k])
	}
	_, err := w.audit.Append(ctx, audit.Event{ActorKind: "system", ActorID: "retention-sweeper", Action: "retention.swept",
		Target: "retention", Outcome: outcome, Details: details})
	return err
}

// scrub makes deleted ciphertext leave the database files where the
// engine allows: SQLite zeroes freed pages (secure_delete, set on every
// writer connection by package store), and a TRUNCATE checkpoint copies
// the zeroed pages into the main file and empties the WAL, which still
// held the old page images. PostgreSQL keeps dead row versions until
// VACUUM reclaims them; autovacuum does that, and docs/retention.md says
// what an operator may add.
func (w *Sweeper) scrub(ctx context.Context) error {
	if w.db.Dialect() != store.SQLite {
		return nil
	}
	if _, err := w.db.Writer().Exec(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint after shredding: %w", err)
	}
	return nil
}

package delivery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
)

// domainBudget is how long one domain job keeps claiming batches before
// it hands over (the scan starts the next one). It is short so a job
// never looks stuck to the queue (see queue's RescueStuckJobsAfter).
const domainBudget = 30 * time.Second

// DomainWorker works messages.DeliverArgs: it delivers a domain's due
// recipients.
type DomainWorker struct {
	river.WorkerDefaults[messages.DeliverArgs]
	Engine *Engine
}

// Timeout implements river.Worker: a domain job runs for its budget plus
// the slowest SMTP exchange.
func (w *DomainWorker) Timeout(*river.Job[messages.DeliverArgs]) time.Duration {
	return domainBudget + w.Engine.opts.Timeout
}

// Work implements river.Worker.
func (w *DomainWorker) Work(ctx context.Context, job *river.Job[messages.DeliverArgs]) error {
	_, err := w.Engine.DeliverDomain(ctx, job.Args.Domain, domainBudget)
	return err
}

// ScanInterval is how often the leader looks for due recipients whose
// domain has no job (retries coming due, scheduled messages, work left by
// a crashed node).
const ScanInterval = 2 * time.Second

// ScanArgs is the periodic scan job.
type ScanArgs struct{}

// Kind implements river.JobArgs.
func (ScanArgs) Kind() string { return "delivery.scan" }

// ScanWorker works ScanArgs.
type ScanWorker struct {
	river.WorkerDefaults[ScanArgs]
	Engine *Engine
	Queue  *queue.Queue
}

// Work implements river.Worker: one domain job (unique) per domain with
// due recipients, at the priority of its most urgent one (transactional
// before marketing).
func (w *ScanWorker) Work(ctx context.Context, _ *river.Job[ScanArgs]) error {
	due, err := w.Engine.dueDomains(ctx, 1000)
	if err != nil || len(due) == 0 {
		return err
	}
	// Inserted in domain order, the order the send path uses, so the scan
	// and a concurrent send never wait for each other's unique job keys in
	// opposite orders (a deadlock on PostgreSQL). The priority order of
	// the query only chose which domains make the limit.
	slices.SortFunc(due, func(a, b dueDomain) int { return strings.Compare(a.domain, b.domain) })
	params := make([]queue.InsertManyParams, len(due))
	for i, d := range due {
		params[i] = queue.InsertManyParams{Args: messages.DeliverArgs{Domain: d.domain, Priority: d.priority},
			InsertOpts: messages.DeliverInsertOpts(d.priority)}
	}
	if _, err := w.Queue.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("start delivery jobs: %w", err)
	}
	return nil
}

// DueDomains returns up to limit domains with recipients due now, the
// domains with transactional recipients first.
func (e *Engine) DueDomains(ctx context.Context, limit int) ([]string, error) {
	due, err := e.dueDomains(ctx, limit)
	out := make([]string, len(due))
	for i, d := range due {
		out[i] = d.domain
	}
	return out, err
}

// dueDomain is a domain with due recipients and the most urgent
// (lowest) priority among them.
type dueDomain struct {
	domain   string
	priority int
}

func (e *Engine) dueDomains(ctx context.Context, limit int) ([]dueDomain, error) {
	now := store.Micros(e.opts.Now())
	rows, err := e.db.Reader().Query(ctx, `SELECT domain, MIN(priority) FROM message_recipients
		WHERE state IN ('queued', 'deferred') AND next_attempt_at <= $1 AND lease_until < $1
		GROUP BY domain ORDER BY MIN(priority), domain LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due domains: %w", err)
	}
	defer rows.Close()
	var out []dueDomain
	for rows.Next() {
		var d dueDomain
		if err := rows.Scan(&d.domain, &d.priority); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

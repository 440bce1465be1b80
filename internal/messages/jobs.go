package messages

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
)

// DeliverArgs is the delivery job of one destination domain: its worker
// (package delivery) delivers every due recipient at the domain, in
// batches over reused connections. At most one such job per domain waits
// or runs at a time per priority; recipients that arrive meanwhile are
// picked up by the running job or by the periodic scan.
type DeliverArgs struct {
	Domain string `json:"domain"`
	// Priority is the job's River priority (1 transactional, 2
	// marketing). It is part of the args so that a waiting marketing job
	// of a domain does not absorb (by uniqueness) the transactional job
	// that must run ahead of other domains' marketing.
	Priority int `json:"priority,omitempty"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "delivery.domain" }

// DeliverInsertOpts are the options of a domain's delivery job:
// transactional mail (priority 1) runs before marketing (2). Uniqueness
// holds only while a job waits or runs (not once it completed, River's
// default), so the next message for the domain gets a new job.
func DeliverInsertOpts(priority int) *queue.InsertOpts {
	return &queue.InsertOpts{Queue: queue.QueueDelivery, Priority: priority, MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{rivertype.JobStateAvailable,
			rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// domainJobs collects the delivery jobs a transaction must start, one
// per destination domain and priority. They are inserted together, once,
// in a fixed order (domain, then priority): each job is unique while it
// waits, so two transactions inserting the same domains' jobs in
// different orders could each hold a key the other waits for (a deadlock
// on PostgreSQL); in one order they only queue behind each other.
type domainJobs map[DeliverArgs]bool

func (j domainJobs) add(domain string, priority int) {
	j[DeliverArgs{Domain: domain, Priority: priority}] = true
}

// insert enqueues the collected jobs in tx.
func (j domainJobs) insert(ctx context.Context, q *queue.Queue, tx store.Tx) error {
	if len(j) == 0 {
		return nil
	}
	args := make([]DeliverArgs, 0, len(j))
	for a := range j {
		args = append(args, a)
	}
	slices.SortFunc(args, func(a, b DeliverArgs) int {
		return cmp.Or(strings.Compare(a.Domain, b.Domain), cmp.Compare(a.Priority, b.Priority))
	})
	params := make([]queue.InsertManyParams, len(args))
	for i, a := range args {
		params[i] = queue.InsertManyParams{Args: a, InsertOpts: DeliverInsertOpts(a.Priority)}
	}
	if _, err := q.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue delivery: %w", err)
	}
	return nil
}

package messages

import (
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sealpost/sealpost/internal/queue"
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

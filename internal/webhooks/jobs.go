package webhooks

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sealpost/sealpost/internal/queue"
)

// DefaultPollInterval is how often the leader starts the dispatcher.
const DefaultPollInterval = 2 * time.Second

// dispatchBudget is how long one dispatcher run keeps claiming batches;
// the next periodic run takes over after it.
const dispatchBudget = 30 * time.Second

// DispatchArgs is the dispatcher job. At most one waits or runs at a time
// in the cluster: inserting another meanwhile is a no-op.
type DispatchArgs struct{}

// Kind implements river.JobArgs.
func (DispatchArgs) Kind() string { return "webhooks.dispatch" }

// InsertOpts implements river.JobArgsWithInsertOpts: the events queue,
// unique while waiting or running, not retried (the next run is a retry).
func (DispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue.QueueEvents, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateRetryable,
		rivertype.JobStateScheduled}}}
}

// DispatchWorker works DispatchArgs.
type DispatchWorker struct {
	river.WorkerDefaults[DispatchArgs]
	Service *Service
}

// Timeout implements river.Worker: the budget plus the slowest POST.
func (w *DispatchWorker) Timeout(*river.Job[DispatchArgs]) time.Duration {
	return dispatchBudget + 2*w.Service.opts.Timeout
}

// Work implements river.Worker.
func (w *DispatchWorker) Work(ctx context.Context, _ *river.Job[DispatchArgs]) error {
	_, err := w.Service.Dispatch(ctx, dispatchBudget)
	return err
}

// Register adds the dispatcher's and the pruner's workers and periodic
// jobs to q.
func Register(q *queue.Queue, s *Service, every time.Duration) error {
	if every <= 0 {
		every = DefaultPollInterval
	}
	if err := queue.AddWorker(q, &DispatchWorker{Service: s}); err != nil {
		return err
	}
	if err := queue.AddWorker(q, &PruneWorker{Service: s}); err != nil {
		return err
	}
	if err := q.AddPeriodic(pruneInterval, func() river.JobArgs { return PruneArgs{} }, false); err != nil {
		return err
	}
	return q.AddPeriodic(every, func() river.JobArgs { return DispatchArgs{} }, true)
}

// Retention is how long finished deliveries (succeeded or failed) stay
// in the log.
const Retention = 30 * 24 * time.Hour

// pruneInterval is how often the leader prunes the log.
const pruneInterval = time.Hour

// PruneArgs is the job that deletes finished deliveries older than
// Retention.
type PruneArgs struct{}

// Kind implements river.JobArgs.
func (PruneArgs) Kind() string { return "webhooks.prune" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (PruneArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue.QueueEvents, MaxAttempts: 1}
}

// PruneWorker works PruneArgs.
type PruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *PruneWorker) Work(ctx context.Context, _ *river.Job[PruneArgs]) error {
	_, err := w.Service.Prune(ctx, w.Service.opts.Now().Add(-Retention))
	return err
}

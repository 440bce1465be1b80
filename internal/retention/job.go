package retention

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// SweepInterval is how often the queue's leader runs a sweep. Retention
// is counted in days, so a quarter of an hour late is never late.
const SweepInterval = 15 * time.Minute

// SweepArgs is the periodic retention sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "retention.sweep" }

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Sweeper *Sweeper
}

// Timeout implements river.Worker: the sweep's budget plus room for the
// batch in flight and the audit.
func (w *SweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration {
	return w.Sweeper.opts.Budget + time.Minute
}

// Work implements river.Worker.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.Sweeper.Sweep(ctx)
	return err
}

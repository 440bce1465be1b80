package console

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// SweepInterval is how often the queue's leader deletes console sessions
// that ended more than a day ago.
const SweepInterval = time.Hour

// SweepArgs is the periodic sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "console.sweep" }

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Sessions *Sessions
}

// Work implements river.Worker.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.Sessions.Sweep(ctx)
	return err
}

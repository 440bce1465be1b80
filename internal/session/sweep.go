package session

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// SweepInterval is how often the queue's leader sweeps nonces and ended
// sessions: a small, indexed delete, so the tables stay the size of the
// timestamp window rather than of history.
const SweepInterval = 5 * time.Minute

// SweepArgs is the periodic sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "session.sweep" }

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Sessions *Manager
}

// Work implements river.Worker.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.Sessions.Sweep(ctx)
	return err
}

package wkd

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// SweepInterval is how often the queue's leader deletes expired cache
// entries: an indexed delete, so the table stays the size of what was
// looked up within the cache periods rather than of history.
const SweepInterval = time.Hour

// SweepArgs is the periodic sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "wkd.sweep" }

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Cache *Cache
}

// Work implements river.Worker.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.Cache.Sweep(ctx)
	return err
}

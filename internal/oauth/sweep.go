package oauth

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/store"
)

// SweepInterval is how often the queue's leader deletes tokens that
// expired more than a day ago (access tokens live at most an hour,
// refresh tokens a week), so the table holds live tokens, not history.
const SweepInterval = time.Hour

// Sweep deletes long-expired tokens and reports how many.
func (s *Server) Sweep(ctx context.Context) (int64, error) {
	return s.deps.DB.Writer().Exec(ctx, "DELETE FROM oauth_tokens WHERE expires_at < $1",
		store.Micros(s.deps.Now().Add(-24*time.Hour)))
}

// SweepArgs is the periodic sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "oauth.sweep" }

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Server *Server
}

// Work implements river.Worker.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.Server.Sweep(ctx)
	return err
}

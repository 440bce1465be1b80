package app

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
)

// newRetention builds the retention policies and the sweeper that
// crypto-shreds expired message bodies, and registers its periodic job.
// The portal and DLP quarantine join the sweeper with Register once they
// provide a retention.Shredder (see docs/retention.md).
func newRetention(s *store.Store, log *audit.Log, q *queue.Queue, logger *slog.Logger, reg prometheus.Registerer) (
	*retention.Service, *retention.Sweeper, error) {
	policies := retention.New(s, log, retention.Options{})
	sweeper, err := retention.NewSweeper(s, policies, log, retention.SweeperOptions{Logger: logger.With("component", "retention"), Registerer: reg})
	if err != nil {
		return nil, nil, err
	}
	if err := queue.AddWorker(q, &retention.SweepWorker{Sweeper: sweeper}); err != nil {
		return nil, nil, err
	}
	if err := q.AddPeriodic(retention.SweepInterval, func() river.JobArgs { return retention.SweepArgs{} }, false); err != nil {
		return nil, nil, err
	}
	return policies, sweeper, nil
}

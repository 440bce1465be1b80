package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
)

// newRetention builds the retention policies and the sweeper that
// crypto-shreds expired message bodies, portal messages and DLP
// quarantine, and registers its periodic job.
func newRetention(s *store.Store, log *audit.Log, q *queue.Queue, logger *slog.Logger, reg prometheus.Registerer) (
	*retention.Service, *retention.Sweeper, error) {
	policies := retention.New(s, log, retention.Options{})
	sweeper, err := retention.NewSweeper(s, policies, log, retention.SweeperOptions{Logger: logger.With("component", "retention"), Registerer: reg})
	if err != nil {
		return nil, nil, err
	}
	RegisterShredders(sweeper, s, log)
	if err := queue.AddWorker(q, &retention.SweepWorker{Sweeper: sweeper}); err != nil {
		return nil, nil, err
	}
	if err := q.AddPeriodic(retention.SweepInterval, func() river.JobArgs { return retention.SweepArgs{} }, false); err != nil {
		return nil, nil, err
	}
	return policies, sweeper, nil
}

// RegisterShredders plugs the shredders of the kinds other packages own
// into sw (message bodies are the sweeper's own): the portal's and the
// quarantine's. They need only the store and the audit log, so
// `sealpost admin retention sweep` registers the same ones as the server.
func RegisterShredders(sw *retention.Sweeper, s *store.Store, log *audit.Log) {
	sw.Register(retention.KindPortalMessage, &portal.Expiry{DB: s, Audit: log})
	sw.Register(retention.KindQuarantine, &messages.QuarantineExpiry{DB: s, Audit: log})
}

// portalLifetime reads an account's portal period from its retention
// policy at each use, so a changed policy reaches stored messages.
func portalLifetime(policies *retention.Service) func(ctx context.Context, accountID string) (time.Duration, error) {
	return func(ctx context.Context, accountID string) (time.Duration, error) {
		p, err := policies.Policy(ctx, accountID)
		if err != nil {
			return 0, err
		}
		return time.Duration(p.PortalMessageDays) * retention.Day, nil
	}
}

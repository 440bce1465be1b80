package app

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
	"github.com/sealpost/sealpost/internal/webhooks"
)

// newWebhooks builds the webhooks service from the webhooks.* keys and
// registers its dispatcher job.
func newWebhooks(cfg config.Config, s *store.Store, v *vault.Vault, log *audit.Log, q *queue.Queue, logger *slog.Logger,
	reg prometheus.Registerer) (*webhooks.Service, error) {
	svc, err := webhooks.New(s, v, log, webhooks.Options{
		AllowHTTP:            cfg.Webhooks.AllowHTTP,
		AllowPrivateNetworks: cfg.Webhooks.AllowPrivateNetworks,
		Timeout:              cfg.Webhooks.Timeout,
		RetryWindow:          cfg.Webhooks.RetryWindow,
		MaxAttempts:          cfg.Webhooks.MaxAttempts,
		Logger:               logger.With("component", "webhooks"),
		Registerer:           reg,
	})
	if err != nil {
		return nil, err
	}
	if err := webhooks.Register(q, svc, cfg.Webhooks.PollInterval); err != nil {
		return nil, err
	}
	return svc, nil
}

package app

import (
	"context"
	"log/slog"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/tracking"
	"github.com/sealpost/sealpost/internal/vault"
)

// newTracking builds open/click tracking and one-click unsubscribe. Links
// in mail must be absolute, so without http.public_url the service is
// built (its endpoints still answer links sent earlier) but puts nothing
// in new mail.
func newTracking(ctx context.Context, cfg config.Config, s *store.Store, v *vault.Vault, master vault.MasterKey, log *audit.Log,
	logger *slog.Logger) (*tracking.Service, error) {
	trk, err := tracking.New(ctx, s, v, master, tracking.Options{BaseURL: cfg.HTTP.PublicURL, Audit: log,
		Logger: logger.With("component", "tracking")})
	if err != nil {
		return nil, err
	}
	if !trk.Enabled() {
		logger.Warn("http.public_url is not set: messages get no open or click tracking and no List-Unsubscribe header")
	}
	return trk, nil
}

package app

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/wkd"
)

// newKeyFinder builds what the send path asks for recipients' keys: the
// uploaded keys, then, for accounts with wkd_enabled, the Web Key
// Directory (secureline.wkd_* keys) through its per-account cache, whose
// expired entries the leader sweeps. Host names resolve through
// dns.servers, as MX hosts do.
func newKeyFinder(cfg config.Config, s *store.Store, k *keys.Service, r *resolve.Resolver, q *queue.Queue,
	logger *slog.Logger, reg prometheus.Registerer) (*wkd.Finder, error) {
	var roots *x509.CertPool
	if f := cfg.SecureLine.WKDCAFile; f != "" {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		pemBytes, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("secureline.wkd_ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("secureline.wkd_ca_file: %s holds no PEM certificate", f)
		}
	}
	client := wkd.NewClient(wkd.ClientOptions{Resolver: r, RootCAs: roots, Port: cfg.SecureLine.WKDPort,
		Timeout: cfg.SecureLine.WKDTimeout, AllowPrivateNetworks: cfg.SecureLine.WKDAllowPrivateNetworks})
	cache, err := wkd.NewCache(s, client, wkd.CacheOptions{Logger: logger.With("component", "wkd"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	if err := queue.AddWorker(q, &wkd.SweepWorker{Cache: cache}); err != nil {
		return nil, err
	}
	if err := q.AddPeriodic(wkd.SweepInterval, func() river.JobArgs { return wkd.SweepArgs{} }, false); err != nil {
		return nil, err
	}
	// The settings lookup needs no prober or keys: a secureline.Service
	// of its own, as delivery's.
	return wkd.NewFinder(k, secureline.New(s, secureline.Options{}), cache), nil
}

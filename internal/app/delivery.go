package app

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/mtasts"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
	"github.com/sealpost/sealpost/internal/wkd"
)

// newDeliveryEngine builds the delivery engine from the delivery.* keys;
// returnPath, when set, gives each transaction's envelope sender (bounce.*).
func newDeliveryEngine(cfg config.Config, s *store.Store, v *vault.Vault, d *domains.Service, r *resolve.Resolver, helo string,
	returnPath func(accountID, messageID, from string, rcptIndex int) string,
	logger *slog.Logger, reg prometheus.Registerer) (*delivery.Engine, error) {
	routes, err := cfg.Delivery.ParsedRoutes()
	if err != nil {
		return nil, fmt.Errorf("delivery.routes: %w", err)
	}
	var roots *x509.CertPool
	if cfg.Delivery.TLSCAFile != "" {
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		pemBytes, err := os.ReadFile(cfg.Delivery.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("delivery.tls_ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("delivery.tls_ca_file: %s holds no PEM certificate", cfg.Delivery.TLSCAFile)
		}
	}
	parsedRates, err := cfg.Delivery.ParsedDomainRate()
	if err != nil {
		return nil, fmt.Errorf("delivery.domain_rate: %w", err)
	}
	rates := make(map[string]delivery.Rate, len(parsedRates))
	for domain, rate := range parsedRates {
		rates[domain] = delivery.Rate{N: rate.N, Per: rate.Per}
	}
	var sts *mtasts.Client
	if cfg.Delivery.MTASTS {
		// The policy fetch trusts what MX delivery trusts (tls_ca_file).
		sts = mtasts.New(s, r, mtasts.Options{RootCAs: roots, Port: cfg.Delivery.MTASTSPort})
	}
	return delivery.New(s, v, d, r, delivery.Options{
		HeloName:          helo,
		Routes:            routes,
		TLSPolicy:         cfg.Delivery.TLSPolicy,
		RootCAs:           roots,
		MaxConnsPerDomain: cfg.Delivery.MaxConnsPerDomain,
		MessagesPerConn:   cfg.Delivery.MessagesPerConn,
		MaxConns:          cfg.Delivery.MaxConns,
		DomainRates:       rates,
		MTASTS:            sts,
		Smarthost:         cfg.Delivery.Smarthost,
		SmarthostTLS:      cfg.Delivery.SmarthostTLS,
		SmarthostUsername: cfg.Delivery.SmarthostUsername,
		SmarthostPassword: cfg.Delivery.SmarthostPassword,
		Logger:            logger.With("component", "delivery"),
		Registerer:        reg,
		ReturnPath:        returnPath,
	})
}

// wireDelivery lets the engine carry out SecureLine's decisions per
// recipient: encrypt to keys looked up at delivery, fall back to the
// portal, and read the account's mode (docs/secureline.md "At
// delivery"). The settings lookup needs no prober, so it gets a
// secureline.Service of its own.
func wireDelivery(e *delivery.Engine, s *store.Store, k *wkd.Finder, p *portal.Service) {
	var dk delivery.Keys
	if k != nil {
		dk = k
	}
	var dp delivery.Portal
	if p != nil {
		dp = p
	}
	e.SetSecureLine(dk, dp, secureline.New(s, secureline.Options{}))
}

// registerDeliveryJobs adds the domain worker and the periodic scan.
func registerDeliveryJobs(q *queue.Queue, e *delivery.Engine) error {
	if err := queue.AddWorker(q, &delivery.DomainWorker{Engine: e}); err != nil {
		return err
	}
	if err := queue.AddWorker(q, &delivery.ScanWorker{Engine: e, Queue: q}); err != nil {
		return err
	}
	return q.AddPeriodic(delivery.ScanInterval, func() river.JobArgs { return delivery.ScanArgs{} }, true)
}

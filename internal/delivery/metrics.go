package delivery

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	outcomes *prometheus.CounterVec
	// stsFailures counts MTA-STS policy failures by mode (enforce:
	// delivery refused; testing: delivered anyway, would have failed)
	// and reason (mx_mismatch, tls).
	stsFailures *prometheus.CounterVec
	// stsFetchErrors counts failed policy discoveries.
	stsFetchErrors prometheus.Counter
	// throttled counts messages held back by a domain rate limit.
	throttled prometheus.Counter
	// openConns is the number of open outbound SMTP connections.
	openConns prometheus.Gauge
	// secureDeliveries counts delivered recipients by how they were
	// protected (smime, pgp, tls, tls_opportunistic, portal, none).
	secureDeliveries *prometheus.CounterVec
	// secureFallbacks counts recipients SecureLine's method could not be
	// carried out for, by reason (tls_unverified, key_unavailable,
	// encrypt_failed, decided_portal) and what became of them (portal,
	// defer).
	secureFallbacks *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_delivery_attempts_total",
			Help: "Delivery attempts per recipient, by resulting state (delivered, deferred, bounced, failed).",
		}, []string{"state"}),
		stsFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_delivery_mta_sts_failures_total",
			Help: "MTA-STS (RFC 8461) policy failures by policy mode (enforce: not delivered; testing: delivered, would have failed) and reason (mx_mismatch, tls).",
		}, []string{"mode", "reason"}),
		stsFetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealpost_delivery_mta_sts_discovery_errors_total",
			Help: "MTA-STS policy discoveries that failed (DNS, HTTPS fetch, invalid policy); a cached policy still applies.",
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealpost_delivery_rate_limited_total",
			Help: "Messages held back for later by a per-domain rate limit (delivery.domain_rate).",
		}),
		openConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sealpost_delivery_connections_open",
			Help: "Open outbound SMTP connections of this node, idle or in use.",
		}),
		secureDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_delivery_secure_delivered_total",
			Help: "Delivered recipients by SecureLine method (smime, pgp, tls, tls_opportunistic, portal; none: no decision, the TLS policy alone).",
		}, []string{"method"}),
		secureFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_delivery_secure_fallbacks_total",
			Help: "Delivery attempts of recipients whose SecureLine method could not be carried out, by reason (tls_unverified, key_unavailable, encrypt_failed, decided_portal) and outcome (portal, defer).",
		}, []string{"reason", "to"}),
	}
	if reg == nil {
		return m, nil
	}
	if err := register(reg, &m.outcomes); err != nil {
		return nil, err
	}
	if err := register(reg, &m.stsFailures); err != nil {
		return nil, err
	}
	if err := register(reg, &m.stsFetchErrors); err != nil {
		return nil, err
	}
	if err := register(reg, &m.throttled); err != nil {
		return nil, err
	}
	if err := register(reg, &m.openConns); err != nil {
		return nil, err
	}
	if err := register(reg, &m.secureDeliveries); err != nil {
		return nil, err
	}
	if err := register(reg, &m.secureFallbacks); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers *c, or replaces it with the collector already
// registered under its name (several engines in one process).
func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	if err := reg.Register(*c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
		existing, ok := are.ExistingCollector.(C)
		if !ok {
			return err
		}
		*c = existing
	}
	return nil
}

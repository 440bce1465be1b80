package delivery

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	outcomes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_delivery_attempts_total",
			Help: "Delivery attempts per recipient, by resulting state (delivered, deferred, bounced, failed).",
		}, []string{"state"}),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.outcomes); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		m.outcomes = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return m, nil
}

package wkd

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricLookups counts key lookups that reached the directory layer (an
// account with WKD enabled and no uploaded key), by result.
const MetricLookups = "sealpost_wkd_lookups_total"

// Result labels of MetricLookups.
const (
	labelHit    = "hit"    // fetched: the directory had a usable key
	labelMiss   = "miss"   // fetched: no usable key
	labelError  = "error"  // the directory could not be asked
	labelCached = "cached" // answered without asking: from wkd_keys, or sharing another lookup's fetch
)

func newLookupCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricLookups,
		Help: "Web Key Directory key lookups by result (hit, miss, error, cached).",
	}, []string{"result"})
	for _, l := range []string{labelHit, labelMiss, labelError, labelCached} {
		c.WithLabelValues(l) // export every result from the start, at zero
	}
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		return are.ExistingCollector.(*prometheus.CounterVec), nil
	}
	return c, nil
}

package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/store"
)

// storeCollector exports connection pool figures at scrape time.
type storeCollector struct {
	s                 *store.Store
	open, inUse, idle *prometheus.Desc
	waits             *prometheus.Desc
}

func newStoreCollector(s *store.Store) *storeCollector {
	labels := []string{"dialect", "pool"}
	return &storeCollector{
		s:     s,
		open:  prometheus.NewDesc("sealpost_store_connections_open", "Open database connections.", labels, nil),
		inUse: prometheus.NewDesc("sealpost_store_connections_in_use", "Database connections in use.", labels, nil),
		idle:  prometheus.NewDesc("sealpost_store_connections_idle", "Idle database connections.", labels, nil),
		waits: prometheus.NewDesc("sealpost_store_connection_waits_total", "Times a caller waited for a free connection.", labels, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.inUse
	ch <- c.idle
	ch <- c.waits
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	d := string(c.s.Dialect())
	for pool, st := range c.s.PoolStats() {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open), d, pool)
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(st.InUse), d, pool)
		ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(st.Idle), d, pool)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(st.WaitCount), d, pool)
	}
}

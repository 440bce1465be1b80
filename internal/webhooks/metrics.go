package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/store"
)

// Metric names.
const (
	MetricDeliveries = "sealpost_webhook_deliveries_total"
	MetricDuration   = "sealpost_webhook_attempt_duration_seconds"
	MetricFannedOut  = "sealpost_webhook_events_fanned_out_total"
	MetricDepth      = "sealpost_webhook_queue_depth"
	MetricLag        = "sealpost_webhook_queue_lag_seconds"
)

type metrics struct {
	outcomes  *prometheus.CounterVec
	duration  prometheus.Histogram
	fannedOut prometheus.Counter
}

func newMetrics(db *store.Store, opts Options) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliveries,
			Help: "Webhook delivery attempts by outcome (succeeded, retrying, failed).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricDuration,
			Help:    "Time one webhook POST took, connection included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		fannedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricFannedOut,
			Help: "Webhook deliveries created from message events.",
		}),
	}
	if opts.Registerer == nil {
		return m, nil
	}
	for i, c := range []prometheus.Collector{m.outcomes, m.duration, m.fannedOut} {
		if err := opts.Registerer.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			switch i {
			case 0:
				m.outcomes = are.ExistingCollector.(*prometheus.CounterVec)
			case 1:
				m.duration = are.ExistingCollector.(prometheus.Histogram)
			case 2:
				m.fannedOut = are.ExistingCollector.(prometheus.Counter)
			}
		}
	}
	q := &queueCollector{db: db, now: opts.Now, logger: opts.Logger,
		depth: prometheus.NewDesc(MetricDepth, "Webhook deliveries waiting to be sent, by status (pending, retrying).", []string{"status"}, nil),
		lag:   prometheus.NewDesc(MetricLag, "How long the oldest due webhook delivery has waited past its attempt time (0 when none is due).", nil, nil),
	}
	if err := opts.Registerer.Register(q); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
	}
	return m, nil
}

// queueCollector reads the queue's depth and lag at scrape time from the
// store's reader, so every node reports the cluster's figures.
type queueCollector struct {
	db         *store.Store
	now        func() time.Time
	logger     *slog.Logger
	depth, lag *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth; ch <- c.lag }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts := map[string]float64{StatusPending: 0, StatusRetrying: 0}
	rows, err := c.db.Reader().Query(ctx, `SELECT status, count(*) FROM webhook_deliveries WHERE status IN ('pending', 'retrying') GROUP BY status`)
	if err != nil {
		c.logger.Warn("webhooks: queue depth metric", slog.Any("error", err))
		return
	}
	for rows.Next() {
		var st string
		var n int64
		if rows.Scan(&st, &n) == nil {
			counts[st] = float64(n)
		}
	}
	rows.Close()
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, n, st)
	}
	now := store.Micros(c.now())
	var oldest *int64
	if err := c.db.Reader().QueryRow(ctx, `SELECT min(next_attempt_at) FROM webhook_deliveries
		WHERE status IN ('pending', 'retrying') AND next_attempt_at <= $1`, now).Scan(&oldest); err != nil {
		c.logger.Warn("webhooks: queue lag metric", slog.Any("error", err))
		return
	}
	lag := 0.0
	if oldest != nil {
		lag = float64(now-*oldest) / 1e6
	}
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag)
}

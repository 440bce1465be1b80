package queue

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sealpost/sealpost/internal/store"
)

// Metric names.
const (
	MetricJobs        = "sealpost_queue_jobs_total"
	MetricJobDuration = "sealpost_queue_job_duration_seconds"
	MetricDepth       = "sealpost_queue_depth"
)

// Outcomes of a job run, the outcome label of MetricJobs.
const (
	OutcomeCompleted   = "completed"   // the worker succeeded
	OutcomeRetryable   = "retryable"   // the worker failed; the job will be retried
	OutcomeDiscarded   = "discarded"   // the worker failed its last attempt
	OutcomeCancelled   = "cancelled"   // the worker cancelled the job (river.JobCancel)
	OutcomeSnoozed     = "snoozed"     // the worker postponed the job (river.JobSnooze)
	OutcomeInterrupted = "interrupted" // shutdown interrupted it; it will run again
)

// depthStates are the job states MetricDepth counts: the jobs not yet
// finished.
var depthStates = []rivertype.JobState{
	rivertype.JobStateAvailable,
	rivertype.JobStateScheduled,
	rivertype.JobStateRetryable,
	rivertype.JobStateRunning,
}

// depthQuery counts unfinished jobs by queue and state; the states are
// depthStates. Same text on both dialects.
const depthQuery = `SELECT queue, state, count(*) FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'running')
GROUP BY queue, state`

// depthTimeout bounds the depth query of one scrape.
const depthTimeout = 2 * time.Second

// eventBuffer is the size of the metrics event subscription: River drops
// events that do not fit, so it absorbs bursts of completions.
const eventBuffer = 10_000

// metricEventKinds are the River events the metrics count.
var metricEventKinds = []river.EventKind{
	river.EventKindJobCompleted,
	river.EventKindJobFailed,
	river.EventKindJobCancelled,
	river.EventKindJobSnoozed,
	river.EventKindJobInterrupted,
}

type metrics struct {
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	depth    *depthCollector
}

func newMetrics(s *store.Store, opts Options) *metrics {
	return &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricJobs,
			Help: "Job runs finished by this node, by job kind, queue and outcome (completed, retryable, discarded, cancelled, snoozed, interrupted).",
		}, []string{"kind", "queue", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricJobDuration,
			Help:    "Time a worker spent on one run of a job, by job kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"kind"}),
		depth: &depthCollector{
			store:  s,
			queues: opts.Queues,
			logger: opts.Logger,
			desc: prometheus.NewDesc(MetricDepth,
				"Jobs not yet finished in the database, by queue and state (available, scheduled, retryable, running).",
				[]string{"queue", "state"}, nil),
		},
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := []prometheus.Collector{m.jobs, m.duration, m.depth}
	for i, c := range cs {
		if err := r.Register(c); err != nil {
			for _, done := range cs[:i] {
				r.Unregister(done)
			}
			return err
		}
	}
	return nil
}

// consume counts events until River closes the subscription, then closes
// done.
func (m *metrics) consume(events <-chan *river.Event, done chan<- struct{}) {
	defer close(done)
	for ev := range events {
		m.record(ev)
	}
}

func (m *metrics) record(ev *river.Event) {
	if ev.Job == nil {
		return
	}
	outcome := ""
	switch ev.Kind {
	case river.EventKindJobCompleted:
		outcome = OutcomeCompleted
	case river.EventKindJobFailed:
		outcome = OutcomeRetryable
		if ev.Job.State == rivertype.JobStateDiscarded {
			outcome = OutcomeDiscarded
		}
	case river.EventKindJobCancelled:
		outcome = OutcomeCancelled
	case river.EventKindJobSnoozed:
		outcome = OutcomeSnoozed
	case river.EventKindJobInterrupted:
		outcome = OutcomeInterrupted
	default:
		return
	}
	m.jobs.WithLabelValues(ev.Job.Kind, ev.Job.Queue, outcome).Inc()
	if ev.JobStats != nil {
		m.duration.WithLabelValues(ev.Job.Kind).Observe(ev.JobStats.RunDuration.Seconds())
	}
}

// depthCollector counts river_job rows at scrape time, on the store's
// reader so a scrape never waits for the SQLite writer.
type depthCollector struct {
	store  *store.Store
	queues []string
	logger *slog.Logger
	desc   *prometheus.Desc
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reports every configured queue and state, zero included, so the
// series do not vanish when a queue drains, plus any other queue holding
// jobs. A failed query is logged and reports nothing rather than failing
// the whole scrape.
func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), depthTimeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		c.logger.Warn("queue: depth metric", slog.Any("error", err))
		return
	}
	for _, name := range c.queues {
		if _, ok := counts[name]; !ok {
			counts[name] = map[string]int64{}
		}
	}
	for queue, byState := range counts {
		for _, state := range depthStates {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(byState[string(state)]), queue, string(state))
		}
	}
}

func (c *depthCollector) count(ctx context.Context) (map[string]map[string]int64, error) {
	rows, err := c.store.Reader().Query(ctx, depthQuery)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	counts := map[string]map[string]int64{}
	for rows.Next() {
		var queue, state string
		var n int64
		if err := rows.Scan(&queue, &state, &n); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		if counts[queue] == nil {
			counts[queue] = map[string]int64{}
		}
		counts[queue][state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return counts, nil
}

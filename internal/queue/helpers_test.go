package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// pollInterval keeps the suite fast; production polls every second.
const pollInterval = 50 * time.Millisecond

// eachDialect runs fn in parallel subtests, one per dialect, each with a
// fresh store whose store and River schemas are migrated.
func eachDialect(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			migrate(t, s)
			fn(t, s)
		})
	}
}

func migrate(t *testing.T, s *store.Store) {
	t.Helper()
	if err := queue.Migrate(context.Background(), s, nil); err != nil {
		t.Fatalf("migrate River schema: %v", err)
	}
}

// newQueue returns a queue on s with test defaults, stopped at cleanup.
func newQueue(t *testing.T, s *store.Store, opts queue.Options) *queue.Queue {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = pollInterval
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	q, err := queue.New(s, opts)
	if err != nil {
		t.Fatalf("new queue: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("stop queue: %v", err)
		}
	})
	return q
}

func start(t *testing.T, q *queue.Queue) {
	t.Helper()
	if err := q.Start(context.Background()); err != nil {
		t.Fatalf("start queue: %v", err)
	}
}

func addWorker[T river.JobArgs](t *testing.T, q *queue.Queue, w river.Worker[T]) {
	t.Helper()
	if err := queue.AddWorker(q, w); err != nil {
		t.Fatalf("add worker: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exec(t *testing.T, q store.Querier, query string, args ...any) {
	t.Helper()
	if _, err := q.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func count(t *testing.T, s *store.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Reader().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// jobStates returns the states of the jobs in river_job, by id order.
func jobStates(t *testing.T, s *store.Store) []string {
	t.Helper()
	rows, err := s.Reader().Query(context.Background(), "SELECT state FROM river_job ORDER BY id")
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	defer rows.Close()
	var states []string
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			t.Fatalf("scan job: %v", err)
		}
		states = append(states, st)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	return states
}

// recordArgs is a job whose worker writes one test_runs row per run.
type recordArgs struct {
	Key string `json:"key"`
	// FailAttempts makes the first attempts fail.
	FailAttempts int `json:"fail_attempts,omitempty"`
}

func (recordArgs) Kind() string { return "test_record" }

const createRuns = `CREATE TABLE test_runs (
    run_id TEXT PRIMARY KEY,
    job_key TEXT NOT NULL,
    ran_at BIGINT NOT NULL
)`

// recordWorker records each successful run in test_runs, keyed by a fresh
// run id, so a second run of a job shows as a second row.
type recordWorker struct {
	river.WorkerDefaults[recordArgs]
	s *store.Store
}

func newRecordWorker(t *testing.T, s *store.Store) *recordWorker {
	t.Helper()
	exec(t, s.Writer(), createRuns)
	return &recordWorker{s: s}
}

func (w *recordWorker) Work(ctx context.Context, job *river.Job[recordArgs]) error {
	if job.Attempt <= job.Args.FailAttempts {
		return fmt.Errorf("attempt %d fails on purpose", job.Attempt)
	}
	_, err := w.s.Writer().Exec(ctx, "INSERT INTO test_runs (run_id, job_key, ran_at) VALUES ($1, $2, $3)",
		store.NewID(), job.Args.Key, store.Micros(time.Now()))
	return err
}

// NextRetry retries at once rather than after River's backoff.
func (w *recordWorker) NextRetry(*river.Job[recordArgs]) time.Time {
	return time.Now().Add(pollInterval)
}

func runs(t *testing.T, s *store.Store, key string) int {
	t.Helper()
	return count(t, s, "SELECT count(*) FROM test_runs WHERE job_key = $1", key)
}

// orderArgs jobs record the order in which they ran.
type orderArgs struct {
	Name string `json:"name"`
}

func (orderArgs) Kind() string { return "test_order" }

type orderWorker struct {
	river.WorkerDefaults[orderArgs]
	mu    sync.Mutex
	names []string
}

func (w *orderWorker) Work(_ context.Context, job *river.Job[orderArgs]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.names = append(w.names, job.Args.Name)
	return nil
}

func (w *orderWorker) ran() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.names...)
}

// slowArgs jobs take a while, or until cancelled.
type slowArgs struct {
	Hold time.Duration `json:"hold"`
}

func (slowArgs) Kind() string { return "test_slow" }

type slowWorker struct {
	river.WorkerDefaults[slowArgs]
	started   chan struct{}
	finished  chan struct{}
	cancelled chan struct{}
}

func newSlowWorker() *slowWorker {
	return &slowWorker{started: make(chan struct{}), finished: make(chan struct{}), cancelled: make(chan struct{})}
}

func (w *slowWorker) Work(ctx context.Context, job *river.Job[slowArgs]) error {
	close(w.started)
	select {
	case <-time.After(job.Args.Hold):
		close(w.finished)
		return nil
	case <-ctx.Done():
		close(w.cancelled)
		return ctx.Err()
	}
}

// metricValue returns the value of the series of name with labels in g,
// or an error when it is absent.
func metricValue(g prometheus.Gatherer, name string, labels map[string]string) (float64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), nil
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), nil
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), nil
			}
		}
	}
	return 0, errors.New("no series " + name + fmt.Sprint(labels))
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, lp := range m.GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return len(got) == len(want)
}

package queue_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

const createItems = `CREATE TABLE test_items (key TEXT PRIMARY KEY)`

// insertItemWithJob inserts a test_items row and its job in one
// transaction, rolling back when fail is set.
func insertItemWithJob(ctx context.Context, s *store.Store, q *queue.Queue, key string, fail error) error {
	return s.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO test_items (key) VALUES ($1)", key); err != nil {
			return err
		}
		if _, err := q.InsertTx(ctx, tx, recordArgs{Key: key}, nil); err != nil {
			return err
		}
		return fail
	})
}

func TestJobInsertedWithRowsIsWorkedOnce(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		exec(t, s.Writer(), createItems)
		q := newQueue(t, s, queue.Options{})
		addWorker(t, q, newRecordWorker(t, s))
		start(t, q)

		if err := insertItemWithJob(ctx, s, q, "msg-1", nil); err != nil {
			t.Fatalf("insert row and job: %v", err)
		}
		if n := count(t, s, "SELECT count(*) FROM test_items WHERE key = 'msg-1'"); n != 1 {
			t.Fatalf("rows committed = %d, want 1", n)
		}
		waitFor(t, "the job to run", 10*time.Second, func() bool { return runs(t, s, "msg-1") >= 1 })
		waitFor(t, "the job to be completed", 10*time.Second, func() bool {
			return slices.Equal(jobStates(t, s), []string{"completed"})
		})
		// A completed job is never fetched again; give a wrong second run
		// a few polls to show anyway.
		time.Sleep(5 * pollInterval)
		if n := runs(t, s, "msg-1"); n != 1 {
			t.Fatalf("job ran %d times, want 1", n)
		}
	})
}

func TestRolledBackTransactionLeavesNoJob(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		exec(t, s.Writer(), createItems)
		q := newQueue(t, s, queue.Options{})
		addWorker(t, q, newRecordWorker(t, s))

		boom := errors.New("request refused")
		if err := insertItemWithJob(ctx, s, q, "msg-1", boom); !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want %v", err, boom)
		}
		if n := count(t, s, "SELECT count(*) FROM test_items"); n != 0 {
			t.Errorf("rows after rollback = %d, want 0", n)
		}
		if n := count(t, s, "SELECT count(*) FROM river_job"); n != 0 {
			t.Errorf("jobs after rollback = %d, want 0", n)
		}
	})
}

func TestJobSurvivesRestart(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := storetest.URL(t, d)

			// First life: the job is accepted, then the node goes down
			// before any worker ran it.
			s1 := openMigrated(t, url)
			w1 := newRecordWorker(t, s1)
			q1, err := queue.New(s1, queue.Options{PollInterval: pollInterval})
			if err != nil {
				t.Fatal(err)
			}
			addWorker(t, q1, w1)
			if _, err := q1.Insert(ctx, recordArgs{Key: "survivor"}, nil); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if err := q1.Stop(ctx); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if err := s1.Close(); err != nil {
				t.Fatalf("close store: %v", err)
			}

			// Second life: a new store and queue on the same database.
			s2 := openMigrated(t, url)
			q2 := newQueue(t, s2, queue.Options{})
			addWorker(t, q2, &recordWorker{s: s2})
			start(t, q2)
			waitFor(t, "the job to run after restart", 10*time.Second, func() bool { return runs(t, s2, "survivor") >= 1 })
			waitFor(t, "the job to be completed", 10*time.Second, func() bool {
				return slices.Equal(jobStates(t, s2), []string{"completed"})
			})
			time.Sleep(5 * pollInterval)
			if n := runs(t, s2, "survivor"); n != 1 {
				t.Fatalf("job ran %d times, want 1", n)
			}
		})
	}
}

func openMigrated(t *testing.T, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx, store.MigrateOptions{}); err != nil {
		t.Fatalf("migrate store: %v", err)
	}
	migrate(t, s)
	return s
}

func TestHigherPriorityRunsFirst(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := &orderWorker{}
		q := newQueue(t, s, queue.Options{MaxWorkers: 1, Queues: []string{queue.QueueDefault}})
		addWorker(t, q, w)

		// The low-priority jobs are older, so only priority puts the
		// urgent ones first.
		var batch []queue.InsertManyParams
		for _, name := range []string{"low-1", "low-2", "low-3"} {
			batch = append(batch, queue.InsertManyParams{Args: orderArgs{Name: name}, InsertOpts: &queue.InsertOpts{Priority: 4}})
		}
		if _, err := q.InsertMany(ctx, batch); err != nil {
			t.Fatalf("insert low: %v", err)
		}
		batch = batch[:0]
		for _, name := range []string{"urgent-1", "urgent-2", "urgent-3"} {
			batch = append(batch, queue.InsertManyParams{Args: orderArgs{Name: name}, InsertOpts: &queue.InsertOpts{Priority: 1}})
		}
		if _, err := q.InsertMany(ctx, batch); err != nil {
			t.Fatalf("insert urgent: %v", err)
		}
		start(t, q)

		waitFor(t, "all jobs to run", 10*time.Second, func() bool { return len(w.ran()) == 6 })
		want := []string{"urgent-1", "urgent-2", "urgent-3", "low-1", "low-2", "low-3"}
		if got := w.ran(); !slices.Equal(got, want) {
			t.Fatalf("run order = %v, want %v", got, want)
		}
	})
}

func TestScheduledJobDoesNotRunEarly(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		q := newQueue(t, s, queue.Options{})
		addWorker(t, q, newRecordWorker(t, s))
		start(t, q)

		at := time.Now().Add(time.Second)
		if _, err := q.Insert(ctx, recordArgs{Key: "later"}, &queue.InsertOpts{ScheduledAt: at}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		// The River leader releases due jobs every 5s.
		waitFor(t, "the scheduled job to run", 15*time.Second, func() bool { return runs(t, s, "later") >= 1 })
		var ranAt int64
		if err := s.Reader().QueryRow(ctx, "SELECT ran_at FROM test_runs WHERE job_key = 'later'").Scan(&ranAt); err != nil {
			t.Fatal(err)
		}
		// River keeps times to the millisecond.
		if ran := store.FromMicros(ranAt); ran.Before(at.Truncate(time.Millisecond)) {
			t.Fatalf("job ran at %s, %s before its time", ran.Format(time.RFC3339Nano), at.Sub(ran))
		}
	})
}

func TestFailedJobIsRetriedAndCounted(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		q := newQueue(t, s, queue.Options{Registerer: reg})
		addWorker(t, q, newRecordWorker(t, s))
		start(t, q)

		if _, err := q.Insert(ctx, recordArgs{Key: "flaky", FailAttempts: 1}, nil); err != nil {
			t.Fatalf("insert: %v", err)
		}
		waitFor(t, "the retry to succeed", 10*time.Second, func() bool { return runs(t, s, "flaky") == 1 })

		series := func(outcome string) map[string]string {
			return map[string]string{"kind": "test_record", "queue": queue.QueueDefault, "outcome": outcome}
		}
		waitFor(t, "the completion to be counted", 5*time.Second, func() bool {
			v, err := metricValue(reg, queue.MetricJobs, series(queue.OutcomeCompleted))
			return err == nil && v == 1
		})
		if v, err := metricValue(reg, queue.MetricJobs, series(queue.OutcomeRetryable)); err != nil || v != 1 {
			t.Errorf("retryable failures = %v (%v), want 1", v, err)
		}
		if v, err := metricValue(reg, queue.MetricJobDuration, map[string]string{"kind": "test_record"}); err != nil || v != 2 {
			t.Errorf("timed runs = %v (%v), want 2", v, err)
		}
		if _, err := metricValue(reg, queue.MetricJobs, series(queue.OutcomeDiscarded)); err == nil {
			t.Errorf("a discarded job was counted")
		}
	})
}

func TestStopDrainsRunningJob(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newSlowWorker()
		q := newQueue(t, s, queue.Options{})
		addWorker(t, q, w)
		start(t, q)
		if _, err := q.Insert(ctx, slowArgs{Hold: 300 * time.Millisecond}, nil); err != nil {
			t.Fatalf("insert: %v", err)
		}
		waitFor(t, "the job to start", 10*time.Second, func() bool {
			select {
			case <-w.started:
				return true
			default:
				return false
			}
		})

		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := q.Stop(stopCtx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		select {
		case <-w.finished:
		default:
			t.Fatal("Stop returned before the running job finished")
		}
		if got := jobStates(t, s); !slices.Equal(got, []string{"completed"}) {
			t.Fatalf("job states after stop = %v, want [completed]", got)
		}
		if !errors.Is(q.Running(), queue.ErrStopped) {
			t.Fatalf("Running after Stop = %v, want ErrStopped", q.Running())
		}
	})
}

func TestStopDeadlineCancelsRunningJob(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newSlowWorker()
		q := newQueue(t, s, queue.Options{})
		addWorker(t, q, w)
		start(t, q)
		if _, err := q.Insert(ctx, slowArgs{Hold: time.Minute}, nil); err != nil {
			t.Fatalf("insert: %v", err)
		}
		waitFor(t, "the job to start", 10*time.Second, func() bool {
			select {
			case <-w.started:
				return true
			default:
				return false
			}
		})

		stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if err := q.Stop(stopCtx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v, want the deadline error", err)
		}
		select {
		case <-w.cancelled:
		default:
			t.Fatal("the running job's context was not cancelled")
		}
		// The job is not lost: it waits to be worked again.
		if got := jobStates(t, s); len(got) != 1 || got[0] == "completed" || got[0] == "discarded" {
			t.Fatalf("job states after cancelled stop = %v, want one job to run again", got)
		}
	})
}

func TestRunningFollowsLifecycle(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		q := newQueue(t, s, queue.Options{})
		addWorker(t, q, &orderWorker{})
		if err := q.Running(); !errors.Is(err, queue.ErrNotStarted) {
			t.Fatalf("Running before Start = %v, want ErrNotStarted", err)
		}
		start(t, q)
		if err := q.Running(); err != nil {
			t.Fatalf("Running after Start = %v, want nil", err)
		}
		if err := q.Start(ctx); err == nil {
			t.Fatal("second Start succeeded")
		}
		if err := q.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if err := q.Running(); !errors.Is(err, queue.ErrStopped) {
			t.Fatalf("Running after Stop = %v, want ErrStopped", err)
		}
		if err := q.Start(ctx); !errors.Is(err, queue.ErrStopped) {
			t.Fatalf("Start after Stop = %v, want ErrStopped", err)
		}
	})
}

func TestWorkersAreFixedOnceUsed(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		q := newQueue(t, s, queue.Options{})
		addWorker(t, q, &orderWorker{})
		if err := queue.AddWorker(q, &orderWorker{}); err == nil {
			t.Fatal("a second worker for the same kind was accepted")
		}
		if _, err := q.Insert(ctx, orderArgs{Name: "a"}, nil); err != nil {
			t.Fatalf("insert: %v", err)
		}
		if err := queue.AddWorker(q, river.WorkFunc(func(context.Context, *river.Job[slowArgs]) error { return nil })); err == nil {
			t.Fatal("a worker added after the first insert was accepted")
		}
		if _, err := q.Insert(ctx, slowArgs{}, nil); err == nil {
			t.Fatal("a job without a worker was accepted")
		}
	})
}

func TestOptionsAreValidated(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	for name, opts := range map[string]queue.Options{
		"too many workers":     {MaxWorkers: 10_001},
		"negative workers":     {MaxWorkers: -1},
		"sub-millisecond poll": {PollInterval: time.Microsecond},
		"duplicate queue":      {Queues: []string{"a", "a"}},
		"empty queue name":     {Queues: []string{""}},
	} {
		if _, err := queue.New(s, opts); err == nil {
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := queue.New(s, queue.Options{Registerer: reg}); err != nil {
		t.Fatalf("first queue on a registry: %v", err)
	}
	if _, err := queue.New(s, queue.Options{Registerer: reg}); err == nil {
		t.Fatal("a second queue registered the same metrics")
	}
}

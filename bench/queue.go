package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
)

// queueBatch is how many jobs QueueNoop inserts per transaction.
const queueBatch = 1000

// progressEvery is how often QueueNoop reports progress while jobs run.
const progressEvery = 500 * time.Millisecond

// noopArgs is the benchmark job. Its worker does nothing, so the figures
// are the queue's own cost per job.
type noopArgs struct {
	Seq int `json:"seq"`
}

func (noopArgs) Kind() string { return "bench_noop" }

// noopWorker counts runs and closes all when the last expected one is done.
type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	want int64
	done atomic.Int64
	all  chan struct{}
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	if w.done.Add(1) == w.want {
		close(w.all)
	}
	return nil
}

// noopWorkers is QueueNoop's worker count. A River queue fetches at most
// once per 100 ms, so it works at most MaxWorkers x 10 jobs per second
// (200/s with the default 20); 1,000 workers lift that cap above what
// SQLite sustains, so the figure is the queue's own ceiling.
const noopWorkers = 1000

// QueueNoop measures how fast the queue works jobs: it inserts n no-op
// jobs in batches of 1,000 while no worker runs, then times one queue of
// 1,000 workers from Start until it has worked them all. Run it on a
// scratch database: it applies River's migrations and deletes its own jobs
// before and after.
func QueueNoop(ctx context.Context, s *store.Store, n int, progress Progress) (Result, error) {
	return queueNoop(ctx, s, n, queue.Options{MaxWorkers: noopWorkers, Queues: []string{queue.QueueDefault}}, progress)
}

func queueNoop(ctx context.Context, s *store.Store, n int, opts queue.Options, progress Progress) (Result, error) {
	const name = "queue.work.noop"
	if n <= 0 {
		return Result{}, fmt.Errorf("%s: n must be positive (got %d)", name, n)
	}
	progress = orNoProgress(progress)
	if err := prepareQueueBench(ctx, s); err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	w := &noopWorker{want: int64(n), all: make(chan struct{})}
	q, err := newBenchQueue(s, opts, w)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	batch := make([]queue.InsertManyParams, 0, queueBatch)
	for done := 0; done < n; {
		batch = batch[:0]
		for i := 0; i < queueBatch && done+i < n; i++ {
			batch = append(batch, queue.InsertManyParams{Args: noopArgs{Seq: done + i}})
		}
		if _, err := q.InsertMany(ctx, batch); err != nil {
			return Result{}, fmt.Errorf("%s: %w", name, err)
		}
		done += len(batch)
		progress(name+".insert", done, n)
	}

	start := time.Now()
	if err := q.Start(ctx); err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	var waitErr error
wait:
	for {
		select {
		case <-w.all:
			break wait
		case <-tick.C:
			progress(name, int(w.done.Load()), n)
		case <-ctx.Done():
			waitErr = ctx.Err()
			break wait
		}
	}
	elapsed := time.Since(start)
	progress(name, int(w.done.Load()), n)

	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stopErr := q.Stop(stopCtx)
	if err := errors.Join(waitErr, stopErr, clearQueueBench(context.WithoutCancel(ctx), s)); err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	return Result{Name: name, Dialect: string(s.Dialect()), Ops: n, Elapsed: elapsed}, nil
}

// QueueInsert measures how fast jobs are inserted: n no-op jobs, batch per
// store transaction (1 is one transaction per job, as a request that
// enqueues one message; 1,000 is group commit). No worker runs. Run it on
// a scratch database: it applies River's migrations and deletes its own
// jobs before and after.
func QueueInsert(ctx context.Context, s *store.Store, n, batch int, progress Progress) (Result, error) {
	name := fmt.Sprintf("queue.insert.batch%d", batch)
	if n <= 0 || batch <= 0 {
		return Result{}, fmt.Errorf("%s: n and batch must be positive (got %d, %d)", name, n, batch)
	}
	progress = orNoProgress(progress)
	if err := prepareQueueBench(ctx, s); err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	q, err := newBenchQueue(s, queue.Options{}, &noopWorker{})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	params := make([]queue.InsertManyParams, 0, batch)
	start := time.Now()
	for done := 0; done < n; {
		params = params[:0]
		for i := 0; i < batch && done+i < n; i++ {
			params = append(params, queue.InsertManyParams{Args: noopArgs{Seq: done + i}})
		}
		err := s.InTx(ctx, func(tx store.Tx) error {
			if len(params) == 1 {
				_, err := q.InsertTx(ctx, tx, params[0].Args, nil)
				return err
			}
			_, err := q.InsertManyTx(ctx, tx, params)
			return err
		})
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", name, err)
		}
		done += len(params)
		if done%queueBatch < len(params) || done == n {
			progress(name, done, n)
		}
	}
	elapsed := time.Since(start)
	if err := clearQueueBench(context.WithoutCancel(ctx), s); err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	return Result{Name: name, Dialect: string(s.Dialect()), Ops: n, Elapsed: elapsed}, nil
}

func newBenchQueue(s *store.Store, opts queue.Options, w *noopWorker) (*queue.Queue, error) {
	q, err := queue.New(s, opts)
	if err != nil {
		return nil, err
	}
	if err := queue.AddWorker(q, w); err != nil {
		return nil, err
	}
	return q, nil
}

func prepareQueueBench(ctx context.Context, s *store.Store) error {
	if err := queue.Migrate(ctx, s, nil); err != nil {
		return err
	}
	return clearQueueBench(ctx, s)
}

// clearQueueBench deletes the benchmark's jobs, so that leftovers of an
// interrupted run are not counted and a finished run leaves none.
func clearQueueBench(ctx context.Context, s *store.Store) error {
	if _, err := s.Writer().Exec(ctx, "DELETE FROM river_job WHERE kind = $1", noopArgs{}.Kind()); err != nil {
		return fmt.Errorf("delete benchmark jobs: %w", err)
	}
	return nil
}

func orNoProgress(p Progress) Progress {
	if p == nil {
		return func(string, int, int) {}
	}
	return p
}

// Package queue is Sealpost's durable job queue: River
// (github.com/riverqueue/river) over the store's own database, through
// River's SQLite driver on the single SQLite writer connection and its pgx
// driver on the PostgreSQL pool. It owns River's schema (Migrate,
// CheckMigrated), the River client's lifecycle (Start, Stop, Running), job
// insertion inside the caller's store transaction (InsertTx), and the
// queue's Prometheus metrics. It does not define jobs: each domain package
// declares its own river.JobArgs and river.Worker and registers them with
// AddWorker.
//
// Job arguments, and the errors workers return, are stored in clear in the
// river_job table and may appear in River's logs, so they carry references
// (message, account, contact ids), never PHI.
//
// On SQLite the store has one writer connection, which River shares. Never
// call Insert or InsertMany (which take that connection) while holding a
// store transaction: use InsertTx or InsertManyTx with the transaction
// instead.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/store"
)

// Names of Sealpost's queues.
const (
	// QueueDefault takes jobs inserted without a queue (River's default).
	QueueDefault = river.QueueDefault
	// QueueDelivery takes outbound delivery attempts.
	QueueDelivery = "delivery"
	// QueueEvents takes event fan-out: webhooks, workflow triggers, reports.
	QueueEvents = "events"
)

// DefaultQueues returns the queues a node works when Options.Queues is
// empty: QueueDefault, QueueDelivery and QueueEvents.
func DefaultQueues() []string {
	return []string{QueueDefault, QueueDelivery, QueueEvents}
}

// Defaults applied to zero Options fields.
const (
	DefaultMaxWorkers   = 20
	DefaultPollInterval = time.Second
)

// maxWorkersLimit is River's upper bound on workers per queue.
const maxWorkersLimit = 10_000

// cancelGrace bounds how long Stop waits, once its deadline has passed and
// the remaining jobs' contexts are cancelled, for those jobs to return.
const cancelGrace = 5 * time.Second

// Errors Running reports.
var (
	// ErrNotStarted: Start has not been called (or failed).
	ErrNotStarted = errors.New("queue: not started")
	// ErrStopped: the queue was stopped and works no more jobs.
	ErrStopped = errors.New("queue: stopped")
)

// Options tunes a Queue. The zero value works the default queues with 20
// workers each, polls every second and discards River's logs.
type Options struct {
	// Logger receives River's own logs (job errors, leadership,
	// maintenance). Nil discards them.
	Logger *slog.Logger

	// Registerer receives the queue's metrics. Nil exports none; the global
	// registry is never used.
	Registerer prometheus.Registerer

	// MaxWorkers bounds how many jobs of each queue this node works at once
	// (default DefaultMaxWorkers, at most 10,000). It also bounds
	// throughput: a queue fetches at most MaxWorkers jobs every 100 ms, so
	// a node works at most MaxWorkers x 10 jobs per second per queue.
	MaxWorkers int

	// PollInterval is how often each queue looks for due jobs besides being
	// woken by inserts (River's FetchPollInterval; default
	// DefaultPollInterval). Scheduled and retried jobs are released by the
	// River leader every few seconds whatever this is.
	PollInterval time.Duration

	// JobTimeout cancels a job's context once it has run this long; zero
	// means River's default (one minute) and a negative value means never.
	// A worker's Timeout method overrides it per job.
	JobTimeout time.Duration

	// Queues names the queues this node works (default DefaultQueues()).
	// Jobs may be inserted into any queue, but only worked by nodes that
	// list it.
	Queues []string
}

func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxWorkers == 0 {
		o.MaxWorkers = DefaultMaxWorkers
	}
	if o.MaxWorkers < 0 || o.MaxWorkers > maxWorkersLimit {
		return o, fmt.Errorf("queue: MaxWorkers must be between 1 and %d (got %d)", maxWorkersLimit, o.MaxWorkers)
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.PollInterval < time.Millisecond {
		return o, fmt.Errorf("queue: PollInterval must be at least 1ms (got %s)", o.PollInterval)
	}
	if o.JobTimeout < 0 {
		o.JobTimeout = -1 // River's "never"
	}
	if len(o.Queues) == 0 {
		o.Queues = DefaultQueues()
	}
	seen := map[string]bool{}
	for _, name := range o.Queues {
		if name == "" || seen[name] {
			return o, fmt.Errorf("queue: Queues must hold distinct, non-empty names (got %q)", o.Queues)
		}
		seen[name] = true
	}
	return o, nil
}

// Queue is the job queue of one node. Register workers with AddWorker,
// then Start it; Insert and InsertTx may be called before Start (the jobs
// wait in the database). It is safe for concurrent use.
type Queue struct {
	store    *store.Store
	opts     Options
	workers  *river.Workers
	periodic []*river.PeriodicJob
	metrics  *metrics

	// eng is built from the registered workers on the first Insert or
	// Start; from then on the set of workers is fixed.
	eng atomic.Pointer[engineRef]

	mu         sync.Mutex // guards building eng, AddWorker and the fields below
	state      runState
	eventsDone chan struct{} // closed when the metrics event loop ends
}

type engineRef struct{ engine }

type runState int

const (
	stateIdle runState = iota
	stateRunning
	stateStopped
)

// New returns a queue on s. The store must outlive it, and its River schema
// must be migrated (Migrate) before jobs are inserted or worked. New
// registers the queue's metrics on opts.Registerer and fails if they are
// already registered there.
func New(s *store.Store, opts Options) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	q := &Queue{store: s, opts: opts, workers: river.NewWorkers(), metrics: newMetrics(s, opts)}
	if opts.Registerer != nil {
		if err := q.metrics.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("queue: register metrics: %w", err)
		}
	}
	return q, nil
}

// AddWorker registers w to work jobs of kind T's Kind(). Every worker must
// be added before the queue's first Insert or Start, and a kind only once.
func AddWorker[T river.JobArgs](q *Queue, w river.Worker[T]) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	kind := (*new(T)).Kind()
	if q.eng.Load() != nil {
		return fmt.Errorf("queue: add worker for %q: workers must be added before the first Insert or Start", kind)
	}
	if err := river.AddWorkerSafely(q.workers, w); err != nil {
		return fmt.Errorf("queue: add worker for %q: %w", kind, err)
	}
	return nil
}

// AddPeriodic registers a job that the elected leader node inserts every
// interval (and once at start when runOnStart), so a cluster runs it once
// per interval, not once per node. Like workers, periodic jobs must be
// added before the first Insert or Start.
func (q *Queue) AddPeriodic(every time.Duration, args func() river.JobArgs, runOnStart bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.eng.Load() != nil {
		return fmt.Errorf("queue: add periodic job: must be added before the first Insert or Start")
	}
	if every <= 0 {
		return fmt.Errorf("queue: add periodic job: interval must be positive")
	}
	q.periodic = append(q.periodic, river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return args(), nil },
		&river.PeriodicJobOpts{RunOnStart: runOnStart}))
	return nil
}

// engine returns the River client, building it on first use.
func (q *Queue) engine() (engine, error) {
	if ref := q.eng.Load(); ref != nil {
		return ref.engine, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if ref := q.eng.Load(); ref != nil {
		return ref.engine, nil
	}
	eng, err := newEngine(q.store, q.riverConfig())
	if err != nil {
		return nil, fmt.Errorf("queue: create River client: %w", err)
	}
	q.eng.Store(&engineRef{eng})
	return eng, nil
}

func (q *Queue) riverConfig() *river.Config {
	queues := make(map[string]river.QueueConfig, len(q.opts.Queues))
	for _, name := range q.opts.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: q.opts.MaxWorkers}
	}
	return &river.Config{
		// River refuses a fetch cooldown longer than the poll interval.
		FetchCooldown:     min(river.FetchCooldownDefault, q.opts.PollInterval),
		FetchPollInterval: q.opts.PollInterval,
		JobTimeout:        q.opts.JobTimeout,
		// A job still "running" this long is taken for one whose node
		// died, and retried. River's default (an hour) would leave a
		// crashed node's unique jobs blocking their keys that long; work
		// that must not run twice at once guards itself (delivery leases).
		RescueStuckJobsAfter: max(2*q.opts.JobTimeout, 2*time.Minute),
		Logger:               q.opts.Logger,
		Queues:               queues,
		Workers:              q.workers,
		PeriodicJobs:         q.periodic,
	}
}

// Start begins working jobs and returns once the workers run. ctx bounds
// only the start-up: the queue then runs until Stop, so that shutdown is
// always the graceful path Stop implements. A queue starts at most once.
func (q *Queue) Start(ctx context.Context) error {
	eng, err := q.engine()
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch q.state {
	case stateRunning:
		return errors.New("queue: already started")
	case stateStopped:
		return ErrStopped
	}
	// River's own start-up check ignores ctx once detached below.
	if err := q.store.Ping(ctx); err != nil {
		return fmt.Errorf("queue: start: %w", err)
	}
	events, unsubscribe := eng.subscribe(metricEventKinds...)
	done := make(chan struct{})
	go q.metrics.consume(events, done)
	if err := eng.start(context.WithoutCancel(ctx)); err != nil {
		unsubscribe()
		<-done
		return fmt.Errorf("queue: start: %w", err)
	}
	q.eventsDone = done
	q.state = stateRunning
	return nil
}

// Stop shuts the queue down gracefully: it stops fetching jobs, waits for
// running jobs to finish until ctx is done, then cancels the contexts of
// those still running and waits up to a few more seconds for them to
// return (River puts interrupted jobs back to be worked again). It returns
// an error wrapping ctx's when the deadline forced that cancellation. Only
// the first call does the work; later ones, and Stop on a queue never
// started, return nil at once. A stopped queue cannot be started again.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	state, eventsDone := q.state, q.eventsDone
	q.state = stateStopped
	q.mu.Unlock()
	if state != stateRunning {
		return nil
	}
	eng := q.eng.Load().engine

	err := eng.stop(ctx)
	if err != nil && ctx.Err() != nil {
		q.opts.Logger.WarnContext(ctx, "queue: stop deadline passed; cancelling running jobs")
		hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelGrace)
		defer cancel()
		if herr := eng.stopAndCancel(hardCtx); herr != nil {
			return fmt.Errorf("queue: stop: jobs still running %s after cancellation: %w", cancelGrace, herr)
		}
	} else if err != nil {
		return fmt.Errorf("queue: stop: %w", err)
	}
	// River closes event subscriptions once it has stopped; wait for the
	// last events so the metrics are final.
	<-eventsDone
	if err != nil {
		return fmt.Errorf("queue: stop: running jobs cancelled: %w", err)
	}
	return nil
}

// Running returns nil while the queue is started and working, for /readyz:
// ErrNotStarted before Start, ErrStopped after Stop, or an error when
// River stopped on its own.
func (q *Queue) Running() error {
	q.mu.Lock()
	state := q.state
	q.mu.Unlock()
	switch state {
	case stateIdle:
		return ErrNotStarted
	case stateStopped:
		return ErrStopped
	}
	select {
	case <-q.eng.Load().stopped():
		return errors.New("queue: River client stopped unexpectedly")
	default:
		return nil
	}
}

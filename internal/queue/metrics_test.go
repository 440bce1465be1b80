package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
)

func TestDepthCountsWaitingJobs(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		q := newQueue(t, s, queue.Options{Registerer: reg})
		addWorker(t, q, &orderWorker{})

		// Nothing is started: the jobs wait.
		for _, p := range []queue.InsertManyParams{
			{Args: orderArgs{Name: "a"}, InsertOpts: &queue.InsertOpts{Queue: queue.QueueDelivery}},
			{Args: orderArgs{Name: "b"}, InsertOpts: &queue.InsertOpts{Queue: queue.QueueDelivery}},
			{Args: orderArgs{Name: "c"}, InsertOpts: &queue.InsertOpts{Queue: queue.QueueEvents, ScheduledAt: time.Now().Add(time.Hour)}},
			{Args: orderArgs{Name: "d"}, InsertOpts: &queue.InsertOpts{Queue: "elsewhere"}},
		} {
			if _, err := q.Insert(ctx, p.Args, p.InsertOpts); err != nil {
				t.Fatalf("insert: %v", err)
			}
		}

		for _, c := range []struct {
			queue, state string
			want         float64
		}{
			{queue.QueueDelivery, "available", 2},
			{queue.QueueEvents, "scheduled", 1},
			{"elsewhere", "available", 1},
			{queue.QueueDefault, "available", 0}, // configured queues report zero
			{queue.QueueDelivery, "running", 0},
			{queue.QueueEvents, "retryable", 0},
		} {
			got, err := metricValue(reg, queue.MetricDepth, map[string]string{"queue": c.queue, "state": c.state})
			if err != nil || got != c.want {
				t.Errorf("depth{queue=%q,state=%q} = %v (%v), want %v", c.queue, c.state, got, err, c.want)
			}
		}
		// 4 queues (3 configured, 1 found) x 4 states.
		if n, err := testutil.GatherAndCount(reg, queue.MetricDepth); err != nil || n != 16 {
			t.Errorf("depth series = %d (%v), want 16", n, err)
		}
	})
}

func TestMetricsAreLintClean(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		q := newQueue(t, s, queue.Options{Registerer: reg})
		addWorker(t, q, newRecordWorker(t, s))
		start(t, q)
		if _, err := q.Insert(ctx, recordArgs{Key: "lint"}, nil); err != nil {
			t.Fatalf("insert: %v", err)
		}
		waitFor(t, "the job to be counted", 10*time.Second, func() bool {
			n, err := testutil.GatherAndCount(reg, queue.MetricJobs)
			return err == nil && n == 1
		})
		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	})
}

package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestSweepRunsAsAQueueJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		id := w.addMessage(t, w.a, 40*day, rcpt{"delivered", 35 * day, false})
		if err := queue.Migrate(ctx, s, nil); err != nil {
			t.Fatal(err)
		}
		q, err := queue.New(s, queue.Options{PollInterval: 50 * time.Millisecond, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if err := queue.AddWorker(q, &retention.SweepWorker{Sweeper: w.sweeper}); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = q.Stop(stop)
		})
		if _, err := q.Insert(ctx, retention.SweepArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if msg, _, _ := w.bodies(t, w.a, id); !msg {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the sweep job did not shred the expired body")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

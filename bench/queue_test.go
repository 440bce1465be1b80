package bench

import (
	"context"
	"strconv"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestQueueNoopWorksEveryJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		var last int
		res, err := QueueNoop(context.Background(), s, 1500, func(name string, done, total int) {
			if name == "queue.work.noop" {
				last = done
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops != 1500 || res.Elapsed <= 0 || res.Dialect != string(s.Dialect()) {
			t.Fatalf("result = %+v", res)
		}
		if last != 1500 {
			t.Errorf("last progress = %d, want 1500", last)
		}
		assertNoBenchJobs(t, s)
	})
}

func TestQueueInsertInsertsInBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		for _, batch := range []int{1, 1000} {
			res, err := QueueInsert(context.Background(), s, 1200, batch, nil)
			if err != nil {
				t.Fatalf("batch %d: %v", batch, err)
			}
			if res.Ops != 1200 || res.Elapsed <= 0 {
				t.Fatalf("batch %d: result = %+v", batch, res)
			}
			assertNoBenchJobs(t, s)
		}
	})
}

func assertNoBenchJobs(t *testing.T, s *store.Store) {
	t.Helper()
	var n int
	if err := s.Reader().QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d benchmark jobs left behind", n)
	}
}

// BenchmarkQueueNoop reports jobs worked per second; run with a fixed
// count, e.g. -bench QueueNoop -benchtime 20000x.
func BenchmarkQueueNoop(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			s := storetest.Open(b, d)
			res, err := QueueNoop(context.Background(), s, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond(), "jobs/s")
		})
	}
}

// BenchmarkQueueInsert reports jobs inserted per second, one per
// transaction and 1,000 per transaction.
func BenchmarkQueueInsert(b *testing.B) {
	for _, d := range storetest.Dialects() {
		for _, batch := range []int{1, 1000} {
			b.Run(string(d)+"/batch"+strconv.Itoa(batch), func(b *testing.B) {
				s := storetest.Open(b, d)
				res, err := QueueInsert(context.Background(), s, b.N, batch, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.PerSecond(), "jobs/s")
			})
		}
	}
}

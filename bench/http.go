package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// LoadResult is a closed-loop HTTP load measurement.
type LoadResult struct {
	Name     string
	Requests int
	Errors   int // non-2xx answers or transport errors
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// PerSecond returns successful requests per second.
func (r LoadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

// String formats the result as one table-friendly line.
func (r LoadResult) String() string {
	return fmt.Sprintf("%-28s %8d req %6d err %10.0f req/s  p50 %8s  p99 %8s", r.Name, r.Requests, r.Errors, r.PerSecond(),
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
}

// HTTPLoad runs concurrency closed loops for duration, each sending the
// request newRequest builds (a fresh one each time, so signed requests get
// fresh nonces), and reports throughput and latency percentiles.
func HTTPLoad(ctx context.Context, client *http.Client, name string, newRequest func() (*http.Request, error), concurrency int, duration time.Duration) (LoadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var mu sync.Mutex
	var latencies []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			localErrs := 0
			for ctx.Err() == nil {
				req, err := newRequest()
				if err != nil {
					localErrs++
					continue
				}
				t0 := time.Now()
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						localErrs++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local = append(local, time.Since(t0))
				if resp.StatusCode >= 300 {
					localErrs++
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errs += localErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(latencies) == 0 {
		return LoadResult{}, fmt.Errorf("%s: no request completed", name)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	return LoadResult{Name: name, Requests: len(latencies), Errors: errs, Elapsed: elapsed, P50: pct(0.50), P99: pct(0.99)}, nil
}

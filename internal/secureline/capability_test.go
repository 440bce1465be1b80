package secureline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTLSCacheReusesForTheTTLAndErrorsForLess(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	var calls atomic.Int32
	fail := atomic.Bool{}
	c := &tlsCache{ttl: time.Hour, errTTL: 5 * time.Minute, timeout: time.Second, now: now,
		entries: map[string]cacheEntry{}, inflight: map[string]*probeCall{},
		prober: TLSProberFunc(func(context.Context, string) (TLSResult, error) {
			calls.Add(1)
			if fail.Load() {
				return TLSResult{}, errors.New("SERVFAIL")
			}
			return TLSResult{Verified: true, Detail: "ok"}, nil
		})}
	ctx := context.Background()
	if r := c.get(ctx, "a.example"); !r.Verified || calls.Load() != 1 {
		t.Fatalf("first probe: %+v, %d calls", r, calls.Load())
	}
	advance(59 * time.Minute)
	if c.get(ctx, "a.example"); calls.Load() != 1 {
		t.Fatal("a result is reused within the TTL")
	}
	advance(2 * time.Minute)
	fail.Store(true)
	if r := c.get(ctx, "a.example"); r.Verified || calls.Load() != 2 {
		t.Fatalf("after the TTL: %+v, %d calls (a failed probe is no verified TLS)", r, calls.Load())
	}
	advance(4 * time.Minute)
	if c.get(ctx, "a.example"); calls.Load() != 2 {
		t.Fatal("a failure is reused within the error TTL")
	}
	advance(2 * time.Minute)
	fail.Store(false)
	if r := c.get(ctx, "a.example"); !r.Verified || calls.Load() != 3 {
		t.Fatalf("a failure is forgotten after the error TTL: %+v", r)
	}
}

func TestTLSCacheProbesADomainOnceForConcurrentCallers(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int32
	c := &tlsCache{ttl: time.Hour, errTTL: time.Minute, timeout: 5 * time.Second, now: time.Now,
		entries: map[string]cacheEntry{}, inflight: map[string]*probeCall{},
		prober: TLSProberFunc(func(context.Context, string) (TLSResult, error) {
			calls.Add(1)
			<-release
			return TLSResult{Verified: true}, nil
		})}
	var wg sync.WaitGroup
	results := make([]TLSResult, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.get(context.Background(), "b.example")
		}()
	}
	for {
		c.mu.Lock()
		_, busy := c.inflight["b.example"]
		c.mu.Unlock()
		if busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d probes for one domain", calls.Load())
	}
	for i, r := range results {
		if !r.Verified {
			t.Fatalf("caller %d got %+v", i, r)
		}
	}
}

func TestNoProberMeansNoVerifiedTLS(t *testing.T) {
	t.Parallel()
	c := &tlsCache{}
	if r := c.get(context.Background(), "c.example"); r.Verified || r.Detail == "" {
		t.Fatalf("%+v", r)
	}
}

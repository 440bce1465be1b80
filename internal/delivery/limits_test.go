package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
)

func TestTokenBucketPerDomain(t *testing.T) {
	t.Parallel()
	const maxCount = 100 // sends tried per round
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		rates  map[string]Rate
		domain string
		at     time.Duration // after t0, for the second round
		first  int           // sends admitted at t0 without waiting
		second int           // further sends admitted at t0+at without waiting
	}{
		{name: "a domain's own rate applies, its burst is one second's worth", rates: map[string]Rate{"gmail.com": {20, time.Second}},
			domain: "gmail.com", at: 500 * time.Millisecond, first: 20, second: 10},
		{name: "a per-minute rate refills continuously", rates: map[string]Rate{"*": {600, time.Minute}},
			domain: "any.example", at: 3 * time.Second, first: 10, second: 10},
		{name: "a slow rate has a burst of one", rates: map[string]Rate{"*": {10, time.Minute}},
			domain: "any.example", at: 6 * time.Second, first: 1, second: 1},
		{name: "an override beats the default", rates: map[string]Rate{"*": {1, time.Minute}, "fast.example": {5, time.Second}},
			domain: "fast.example", at: time.Second, first: 5, second: 5},
		{name: "without a rate nothing waits", rates: map[string]Rate{"other.example": {1, time.Hour}},
			domain: "free.example", at: 0, first: maxCount, second: maxCount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newRateLimiter(tt.rates)
			count := func(now time.Time) int {
				n := 0
				for n < maxCount {
					if wait, ok := l.reserve(tt.domain, now, 0); !ok || wait > 0 {
						break
					}
					n++
				}
				return n
			}
			if n := count(t0); n != tt.first {
				t.Fatalf("at t0: %d admitted, want %d", n, tt.first)
			}
			if tt.first < maxCount {
				// A refused reservation takes nothing and says how long.
				if wait, ok := l.reserve(tt.domain, t0, 0); ok || wait <= 0 {
					t.Fatalf("over the limit: wait %v, ok %v", wait, ok)
				}
			}
			if n := count(t0.Add(tt.at)); n != tt.second {
				t.Fatalf("at t0+%v: %d admitted, want %d", tt.at, n, tt.second)
			}
		})
	}
}

func TestTokenBucketReservationsQueueUp(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	l := newRateLimiter(map[string]Rate{"*": {2, time.Second}})
	var waits []time.Duration
	for range 5 {
		wait, ok := l.reserve("d.example", t0, time.Second)
		if !ok {
			break
		}
		waits = append(waits, wait)
	}
	// Burst 2, then one every 500ms, up to the second allowed: 4 in all.
	want := []time.Duration{0, 0, 500 * time.Millisecond, time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

// dialSink opens a real connection to a loopback sink, holding a slot of
// p for domain.
func dialSink(t *testing.T, p *connPool, sink *smtptest.Sink, domain string) *smtpConn {
	t.Helper()
	if err := p.acquire(context.Background(), domain); err != nil {
		t.Fatal(err)
	}
	c, err := dialSMTP(context.Background(), sink.Addr, "sink.test", "client.test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.onClose = func() { p.free(domain) }
	return c
}

func (p *connPool) openCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	sink, err := smtptest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	p := newConnPool(3, 2, time.Minute, nil)
	a1 := dialSink(t, p, sink, "a.example")
	a2 := dialSink(t, p, sink, "a.example")
	// The domain is at its limit: a third connection waits.
	if err := p.acquire(cancelled, "a.example"); err == nil {
		t.Fatal("a third connection to a.example was allowed")
	}
	b1 := dialSink(t, p, sink, "b.example")
	// The node is at its limit: another domain waits too.
	if err := p.acquire(cancelled, "c.example"); err == nil {
		t.Fatal("a fourth connection on the node was allowed")
	}
	// An idle connection gives way to another domain's new one.
	a1.lastUsed = time.Now()
	p.put("a.example", a1)
	if err := p.acquire(cancelled, "c.example"); err != nil {
		t.Fatalf("the idle connection did not give way: %v", err)
	}
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d idle connections after eviction", n)
	}
	p.free("c.example")
	a2.close()
	b1.close()
	if n := p.openCount(); n != 0 {
		t.Fatalf("%d slots still held", n)
	}
}

func TestIdleConnectionsCloseAfterTimeoutAndAtShutdown(t *testing.T) {
	t.Parallel()
	sink, err := smtptest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	p := newConnPool(0, 4, 30*time.Second, nil)
	t0 := time.Now()
	old := dialSink(t, p, sink, "a.example")
	old.lastUsed = t0
	fresh := dialSink(t, p, sink, "a.example")
	fresh.lastUsed = t0.Add(20 * time.Second)
	p.put("a.example", old)
	p.put("a.example", fresh)

	p.reap(t0.Add(29 * time.Second))
	if n := p.idleCount(); n != 2 {
		t.Fatalf("before the timeout: %d idle, want 2", n)
	}
	p.reap(t0.Add(31 * time.Second))
	if n, open := p.idleCount(), p.openCount(); n != 1 || open != 1 {
		t.Fatalf("after the timeout of one: %d idle, %d open; want 1, 1", n, open)
	}
	if got := p.get("a.example", t0.Add(31*time.Second), false); got != fresh {
		t.Fatal("the fresh connection was not kept")
	}
	p.put("a.example", fresh)

	p.closeAll()
	if n, open := p.idleCount(), p.openCount(); n != 0 || open != 0 {
		t.Fatalf("after shutdown: %d idle, %d open", n, open)
	}
	// A connection released after shutdown is closed, not kept.
	late := dialSink(t, p, sink, "a.example")
	p.put("a.example", late)
	if n := p.idleCount(); n != 0 {
		t.Fatal("a connection was pooled after shutdown")
	}
}

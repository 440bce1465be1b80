package auth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
)

func TestThrottleBlocksAfterLimitUntilWindowEnds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := auth.NewThrottle(3, time.Minute)
	th.Now = func() time.Time { return now }
	for i := range 3 {
		if _, blocked := th.Blocked("192.0.2.1"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		th.Fail("192.0.2.1")
	}
	wait, blocked := th.Blocked("192.0.2.1")
	if !blocked || wait != time.Minute {
		t.Fatalf("after 3 failures: blocked %v, wait %v", blocked, wait)
	}
	if _, blocked := th.Blocked("192.0.2.2"); blocked {
		t.Fatal("another address is blocked")
	}
	now = now.Add(40 * time.Second)
	if wait, _ := th.Blocked("192.0.2.1"); wait != 20*time.Second {
		t.Fatalf("wait %v, want 20s", wait)
	}
	now = now.Add(21 * time.Second)
	if _, blocked := th.Blocked("192.0.2.1"); blocked {
		t.Fatal("still blocked after the window")
	}
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	t.Parallel()
	th := auth.NewThrottle(1, time.Hour)
	th.MaxTracked = 100
	for i := range 1000 {
		th.Fail(fmt.Sprintf("198.51.100.%d/%d", i%256, i))
	}
	// Nothing to assert on the map directly; the newest address must
	// still be tracked and blocked.
	if _, blocked := th.Blocked("198.51.100.231/999"); !blocked {
		t.Fatal("newest failing address not tracked")
	}
}

package auth

import (
	"sync"
	"time"
)

// Throttle slows credential guessing: a source address that fails
// authentication Limit times within Window is refused (429) until the
// window that began with its first failure ends. It is per node and in
// memory: each node throttles what it sees, which bounds a guesser to
// Limit × nodes attempts per window. Successes do not reset the count, so
// a valid credential cannot be used to launder guesses.
type Throttle struct {
	Limit  int
	Window time.Duration
	// MaxTracked bounds memory: beyond it, the oldest windows are dropped.
	MaxTracked int
	Now        func() time.Time

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	resetAt  time.Time
}

// NewThrottle returns a Throttle allowing limit failures per window.
func NewThrottle(limit int, window time.Duration) *Throttle {
	return &Throttle{Limit: limit, Window: window, MaxTracked: 100_000, Now: time.Now, entries: map[string]*throttleEntry{}}
}

// Blocked reports whether source must wait, and how long.
func (t *Throttle) Blocked(source string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[source]
	now := t.Now()
	if !ok || !now.Before(e.resetAt) {
		return 0, false
	}
	if e.failures < t.Limit {
		return 0, false
	}
	return e.resetAt.Sub(now), true
}

// Fail records a failed authentication from source.
func (t *Throttle) Fail(source string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	e, ok := t.entries[source]
	if !ok || !now.Before(e.resetAt) {
		if len(t.entries) >= t.MaxTracked {
			t.evict(now)
		}
		e = &throttleEntry{resetAt: now.Add(t.Window)}
		t.entries[source] = e
	}
	e.failures++
}

// evict drops expired windows, and if none expired, every entry: a flood
// of distinct addresses must not grow memory without bound.
func (t *Throttle) evict(now time.Time) {
	for k, e := range t.entries {
		if !now.Before(e.resetAt) {
			delete(t.entries, k)
		}
	}
	if len(t.entries) >= t.MaxTracked {
		clear(t.entries)
	}
}

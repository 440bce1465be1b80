package delivery

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// Rate is a number of messages per period ("20/s" is {20, time.Second}).
type Rate struct {
	N   int
	Per time.Duration
}

// maxRateWait is the longest a worker waits for a domain's rate limit
// before it hands the rest of its batch back for later: a rate-limited
// domain must not hold a queue worker (or its leases) for long.
const maxRateWait = 10 * time.Second

// rateLimiter is a token bucket per destination domain, shared by every
// worker of the node (limits are per node: N nodes send up to N times
// the rate). A bucket holds up to one second's worth of messages (at
// least one), so "600/m" allows bursts of 10 and "10/m" none.
type rateLimiter struct {
	rates map[string]Rate // by domain; "*" for every other domain

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	perSec float64
	burst  float64
	tokens float64 // may go below zero: reservations waiting for refill
	last   time.Time
}

func newRateLimiter(rates map[string]Rate) *rateLimiter {
	return &rateLimiter{rates: rates, buckets: map[string]*bucket{}}
}

func (l *rateLimiter) rate(domain string) (Rate, bool) {
	if r, ok := l.rates[domain]; ok {
		return r, r.N > 0 && r.Per > 0
	}
	r, ok := l.rates["*"]
	return r, ok && r.N > 0 && r.Per > 0
}

// reserve takes a token of domain's bucket at now and returns how long
// the caller must wait before sending. When that would be longer than
// maxWait, nothing is taken and ok is false; wait is then the time until
// a token is free.
func (l *rateLimiter) reserve(domain string, now time.Time, maxWait time.Duration) (wait time.Duration, ok bool) {
	r, limited := l.rate(domain)
	if !limited {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[domain]
	if b == nil {
		perSec := float64(r.N) / r.Per.Seconds()
		burst := max(1, math.Floor(perSec))
		b = &bucket{perSec: perSec, burst: burst, tokens: burst, last: now}
		l.buckets[domain] = b
	}
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.perSec)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait = time.Duration((1 - b.tokens) / b.perSec * float64(time.Second))
	if wait > maxWait {
		return wait, false
	}
	b.tokens--
	return wait, true
}

// admit waits for domain's rate limit and reports whether the message
// may go now; false means hand it back, to be tried again after wait.
// It also refuses when the wait would not leave the job time to send
// before its deadline.
func (e *Engine) admit(ctx context.Context, domain string) (ok bool, retryAfter time.Duration) {
	maxWait := maxRateWait
	if dl, has := ctx.Deadline(); has {
		maxWait = min(maxWait, time.Until(dl)-e.opts.Timeout)
	}
	wait, ok := e.rate.reserve(domain, e.opts.Now(), max(maxWait, 0))
	if !ok {
		e.metrics.throttled.Inc()
		return false, wait
	}
	if wait <= 0 {
		return true, 0
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true, 0
	case <-ctx.Done():
		return false, wait
	}
}

// holdback collects the messages of a batch that the rate limit held
// back.
type holdback struct {
	mu     sync.Mutex
	groups []*group
	after  time.Duration
}

func (h *holdback) add(g *group, after time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.groups = append(h.groups, g)
	h.after = max(h.after, after)
}

// handBack releases the leases of held-back recipients without counting
// an attempt, due again when the domain's bucket has a token, and
// reports whether there were any.
func (e *Engine) handBack(ctx context.Context, h *holdback) bool {
	if len(h.groups) == 0 {
		return false
	}
	next := store.Micros(e.opts.Now().Add(h.after))
	ctx = context.WithoutCancel(ctx) // hand back even when the job is being stopped
	err := e.db.InTx(ctx, func(tx store.Tx) error {
		for _, g := range h.groups {
			for _, c := range g.rcpts {
				if _, err := tx.Exec(ctx, `UPDATE message_recipients SET lease_until = 0, lease_owner = '', next_attempt_at = $1
					WHERE account_id = $2 AND message_id = $3 AND rcpt_index = $4 AND lease_owner = $5`,
					next, c.AccountID, c.MessageID, c.Index, c.Owner); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		// The leases run out on their own within the lease time.
		e.opts.Logger.Warn("hand back rate-limited recipients", "error", err)
	}
	return true
}

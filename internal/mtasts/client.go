package mtasts

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// Resolver is the DNS that discovery needs (package resolve's Resolver).
type Resolver interface {
	// TXT returns the TXT records of name; none is an empty list.
	TXT(ctx context.Context, name string) ([]string, error)
	// Addrs returns the IP addresses of host.
	Addrs(ctx context.Context, host string) ([]string, error)
}

// Options configure a Client. The zero value works.
type Options struct {
	// RootCAs verify the policy host's certificate (nil: the system's).
	RootCAs *x509.CertPool
	// Port is the HTTPS port of policy hosts (default 443; tests point
	// it at a loopback server).
	Port int
	// Timeout bounds one policy fetch (default 30 seconds; RFC 8461 §3.3
	// asks for a timeout and suggests about a minute at most).
	Timeout time.Duration
	// Recheck is how long a domain's TXT record is trusted before it is
	// looked up again (default 5 minutes): between checks, delivery uses
	// what it knows without asking DNS per batch.
	Recheck time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Client discovers and caches policies. It is safe for concurrent use.
type Client struct {
	db    *store.Store
	r     Resolver
	opts  Options
	fetch *fetcher

	mu       sync.Mutex
	mem      map[string]*entry
	inflight map[string]chan struct{}
}

// entry is what is known of one domain.
type entry struct {
	id      string  // the TXT id of the cached policy
	policy  *Policy // nil: no policy known
	text    []byte
	expires time.Time // fetched + max_age
	checked time.Time // the last TXT lookup
}

func (e *entry) valid(now time.Time) bool { return e.policy != nil && now.Before(e.expires) }

// New returns a client caching in db (table mta_sts_policies).
func New(db *store.Store, r Resolver, opts Options) *Client {
	if opts.Port == 0 {
		opts.Port = 443
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Recheck <= 0 {
		opts.Recheck = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Client{db: db, r: r, opts: opts, fetch: newFetcher(r, opts.RootCAs, opts.Port, opts.Timeout),
		mem: map[string]*entry{}, inflight: map[string]chan struct{}{}}
}

// Get returns the policy to apply to mail for domain (lower case ASCII),
// or nil when there is none (or its mode is none, or discovery failed
// with nothing cached: RFC 8461 §5.1 delivers then as without MTA-STS).
// The error reports a discovery failure for logs and metrics; the policy
// returned alongside it is still the one to apply (a cached one).
func (c *Client) Get(ctx context.Context, domain string) (*Policy, error) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	release, err := c.lock(ctx, domain)
	if err != nil {
		return nil, err
	}
	defer release()
	now := c.opts.Now()
	e, err := c.cached(ctx, domain)
	if err != nil {
		return nil, err
	}
	if now.Sub(e.checked) < c.opts.Recheck && (e.policy == nil || e.valid(now)) {
		return applicable(e, now), nil
	}
	e.checked = now
	txts, err := c.r.TXT(ctx, "_mta-sts."+domain)
	if err != nil {
		// RFC 8461 §5.1: a DNS failure keeps a cached, unexpired policy.
		return applicable(e, now), fmt.Errorf("mtasts: TXT of _mta-sts.%s: %w", domain, err)
	}
	id, err := recordID(txts)
	if err != nil {
		if len(txts) == 0 {
			err = nil // the domain publishes no policy
		}
		// No live policy, but a cached unexpired one still applies
		// (RFC 8461 §5.1; §8.3 withdraws a policy with mode none).
		return applicable(e, now), err
	}
	if id == e.id && e.valid(now) {
		return applicable(e, now), nil
	}
	// A new id, or the cached policy expired (max_age): fetch (§5.1).
	p, text, err := c.fetch.fetch(ctx, domain)
	if err != nil {
		return applicable(e, now), err
	}
	e.id, e.policy, e.text, e.expires = id, p, text, now.Add(p.MaxAge)
	if err := c.save(ctx, domain, e, now); err != nil {
		return applicable(e, now), err
	}
	return applicable(e, now), nil
}

// applicable is the policy delivery must apply: an unexpired policy
// whose mode is not none.
func applicable(e *entry, now time.Time) *Policy {
	if !e.valid(now) || e.policy.Mode == ModeNone {
		return nil
	}
	return e.policy
}

// lock serializes discovery per domain, so parallel batches for one
// domain fetch its policy once.
func (c *Client) lock(ctx context.Context, domain string) (func(), error) {
	for {
		c.mu.Lock()
		ch, busy := c.inflight[domain]
		if !busy {
			ch = make(chan struct{})
			c.inflight[domain] = ch
			c.mu.Unlock()
			return func() {
				c.mu.Lock()
				delete(c.inflight, domain)
				c.mu.Unlock()
				close(ch)
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// cached returns the domain's entry, loading it from the database the
// first time (so a restarted node keeps its policies).
func (c *Client) cached(ctx context.Context, domain string) (*entry, error) {
	c.mu.Lock()
	e := c.mem[domain]
	c.mu.Unlock()
	if e != nil {
		return e, nil
	}
	e = &entry{}
	var text string
	var expires int64
	err := c.db.Reader().QueryRow(ctx, "SELECT policy_id, policy, expires_at FROM mta_sts_policies WHERE domain = $1", domain).
		Scan(&e.id, &text, &expires)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("mtasts: load cached policy of %s: %w", domain, err)
	default:
		if p, perr := Parse([]byte(text)); perr == nil {
			e.policy, e.text, e.expires = p, []byte(text), store.FromMicros(expires)
		}
	}
	c.mu.Lock()
	c.mem[domain] = e
	c.mu.Unlock()
	return e, nil
}

func (c *Client) save(ctx context.Context, domain string, e *entry, now time.Time) error {
	_, err := c.db.Writer().Exec(ctx, `INSERT INTO mta_sts_policies (domain, policy_id, policy, fetched_at, expires_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (domain) DO UPDATE SET policy_id = $2, policy = $3, fetched_at = $4, expires_at = $5`,
		domain, e.id, string(e.text), store.Micros(now), store.Micros(e.expires))
	if err != nil {
		return fmt.Errorf("mtasts: cache policy of %s: %w", domain, err)
	}
	return nil
}

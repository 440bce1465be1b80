package secureline

import (
	"context"
	"sync"
	"time"

	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/smime"
)

// KeyFinder finds the keys Sealpost holds for a recipient (package keys'
// Service). Each returns nil, nil when there is none; an error is a
// lookup failure, not an absence.
type KeyFinder interface {
	RecipientPGP(ctx context.Context, accountID, address string) (*pgpmime.PublicKey, error)
	RecipientSMIME(ctx context.Context, accountID, address string) (*smime.Recipient, error)
}

// KeySource is where a recipient's key came from, for the reasons.
type KeySource string

// Key sources.
const (
	// KeyUploaded: uploaded through /v1/keys.
	KeyUploaded KeySource = "uploaded"
	// KeyWKD: found in the recipient domain's Web Key Directory
	// (package wkd), for an account with wkd_enabled.
	KeyWKD KeySource = "wkd"
)

// SourcedKeyFinder is a KeyFinder that also says where a PGP key came
// from (package wkd's Finder); Capabilities asks it when Keys is one.
type SourcedKeyFinder interface {
	RecipientPGPSource(ctx context.Context, accountID, address string) (*pgpmime.PublicKey, KeySource, error)
}

// TLSResult is what a TLS probe of a domain found.
type TLSResult struct {
	// Verified: STARTTLS with a certificate that verifies for the MX
	// name, or an MTA-STS policy in enforce mode.
	Verified bool
	// Detail says which, or why not (host names and reasons only).
	Detail string
}

// TLSProber checks a destination domain's TLS (the delivery engine's
// ProbeTLS, adapted in package app). An error means the domain could not
// be checked now (DNS failure); it counts as no verified TLS.
type TLSProber interface {
	ProbeTLS(ctx context.Context, domain string) (TLSResult, error)
}

// TLSProberFunc adapts a function to TLSProber.
type TLSProberFunc func(ctx context.Context, domain string) (TLSResult, error)

// ProbeTLS implements TLSProber.
func (f TLSProberFunc) ProbeTLS(ctx context.Context, domain string) (TLSResult, error) {
	return f(ctx, domain)
}

// Cache durations and bounds of the TLS capability cache.
const (
	// DefaultProbeTTL is how long a domain's probe result is reused: an
	// MX's TLS set-up rarely changes within the hour, and delivery checks
	// it again on every connection anyway (Fallback).
	DefaultProbeTTL = time.Hour
	// DefaultProbeErrorTTL is how long a failed probe (the domain could
	// not be resolved) is remembered, shorter so that a DNS hiccup does
	// not send a domain's mail to the portal for an hour.
	DefaultProbeErrorTTL = 5 * time.Minute
	// DefaultProbeTimeout bounds one probe.
	DefaultProbeTimeout = 10 * time.Second
	// maxCached bounds the cache; past it, expired entries go first, and
	// then everything.
	maxCached = 10000
)

// tlsCache remembers probe results per domain in memory (per node; a
// restart or another node probes again). Concurrent probes of one domain
// share one connection attempt.
type tlsCache struct {
	prober   TLSProber
	ttl      time.Duration
	errTTL   time.Duration
	timeout  time.Duration
	now      func() time.Time
	mu       sync.Mutex
	entries  map[string]cacheEntry
	inflight map[string]*probeCall
}

type cacheEntry struct {
	res     TLSResult
	expires time.Time
}

type probeCall struct {
	done chan struct{}
	res  TLSResult
}

func (c *tlsCache) get(ctx context.Context, domain string) TLSResult {
	if c.prober == nil {
		return TLSResult{Detail: "TLS not checked on this server"}
	}
	c.mu.Lock()
	now := c.now()
	if e, ok := c.entries[domain]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.res
	}
	if call, ok := c.inflight[domain]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.res
		case <-ctx.Done():
			return TLSResult{Detail: "TLS check did not finish"}
		}
	}
	call := &probeCall{done: make(chan struct{})}
	c.inflight[domain] = call
	c.mu.Unlock()

	// The probe runs on its own deadline so that one impatient caller
	// does not leave a truncated answer in the cache for the others.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	res, err := c.prober.ProbeTLS(pctx, domain)
	cancel()
	ttl := c.ttl
	if err != nil {
		res, ttl = TLSResult{Detail: "the domain's mail servers could not be looked up now"}, c.errTTL
	}
	c.mu.Lock()
	c.store(domain, cacheEntry{res: res, expires: c.now().Add(ttl)})
	delete(c.inflight, domain)
	c.mu.Unlock()
	call.res = res
	close(call.done)
	return res
}

// store saves e under c.mu, keeping the cache bounded.
func (c *tlsCache) store(domain string, e cacheEntry) {
	if len(c.entries) >= maxCached {
		now := c.now()
		for d, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, d)
			}
		}
		if len(c.entries) >= maxCached {
			clear(c.entries)
		}
	}
	c.entries[domain] = e
}

// Package delivery is the delivery engine: for each destination domain it
// claims the recipients that are due (a lease, so a crashed node's work is
// taken over), signs each message with the sender domain's DKIM keys
// (RSA-2048 and Ed25519), resolves the domain's mail hosts (MX in
// preference order, or a static route), and delivers over reused,
// pipelined SMTP connections under the configured STARTTLS policy,
// carrying out each recipient's SecureLine method (PGP or S/MIME
// encryption, verified TLS, the portal as fallback; secure.go). Every
// recipient's outcome (delivered, deferred with exponential backoff and
// jitter, bounced, suppressed) is recorded with the remote host, the TLS
// version and cipher and the server's reply.
package delivery

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/mtasts"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// TLS policies (how hard delivery insists on STARTTLS).
const (
	// TLSOpportunistic encrypts when the server offers STARTTLS, verifying
	// its certificate when it can and encrypting anyway when it cannot;
	// it sends in clear text to servers without STARTTLS.
	TLSOpportunistic = "opportunistic"
	// TLSRequired delivers only over STARTTLS with a certificate that
	// verifies for the host name; otherwise the recipient is deferred
	// (and bounced when its lifetime ends).
	TLSRequired = "required"
)

// Options configure the engine.
type Options struct {
	// HeloName is the name the engine gives in EHLO.
	HeloName string
	// Routes send domains to fixed "host:port" instead of their MX; the
	// key "*" matches every domain.
	Routes map[string]string
	// TLSPolicy is TLSOpportunistic (default) or TLSRequired.
	TLSPolicy string
	// RootCAs verify remote certificates (nil: the system's).
	RootCAs *x509.CertPool
	// Port is the SMTP port of MX hosts (default 25).
	Port int
	// MaxConnsPerDomain bounds the open connections (idle or in use) to
	// one domain across the node's workers (default 4).
	MaxConnsPerDomain int
	// MaxConns bounds the node's open connections in all (0: no cap);
	// idle ones are closed to make room.
	MaxConns int
	// IdleTimeout is how long an idle connection is kept for the next
	// batch (default 30 seconds).
	IdleTimeout time.Duration
	// DomainRates limit the messages per destination domain and node
	// (token buckets shared by the node's workers); the key "*" applies
	// to every domain without its own entry. Nil: no limit.
	DomainRates map[string]Rate
	// MTASTS, when set, applies destination domains' MTA-STS policies
	// (RFC 8461) to MX delivery (not to Routes or the Smarthost).
	MTASTS *mtasts.Client
	// Smarthost, "host:port", relays all mail through one server instead
	// of MX hosts, always over TLS verified for host (RootCAs apply).
	Smarthost string
	// SmarthostTLS is SmarthostSTARTTLS (default) or SmarthostImplicit.
	SmarthostTLS string
	// SmarthostUsername and SmarthostPassword, when set, authenticate
	// to the smarthost (AUTH PLAIN, or LOGIN).
	SmarthostUsername string
	SmarthostPassword string
	// MessagesPerConn bounds the messages one connection carries.
	MessagesPerConn int
	// BatchSize is how many recipients one claim takes.
	BatchSize int
	// Timeout bounds each connect and command.
	Timeout time.Duration
	// Lease is how long claimed recipients stay with this node.
	Lease      time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// ReturnPath, when set, gives the envelope sender (MAIL FROM) of a
	// transaction of message messageID: rcptIndex is the recipient's
	// index when the transaction carries that recipient alone, else -1.
	// Unset, the envelope sender is the From address.
	ReturnPath func(accountID, messageID, from string, rcptIndex int) string
	// Keys, Portal and Modes carry out SecureLine's per-recipient
	// decisions at delivery (secure.go); each may be nil. Without Keys a
	// pgp or smime recipient has no key now and goes to the portal;
	// without an enabled Portal such fallbacks defer instead (never clear
	// text); without Modes every account has secureline.DefaultMode.
	Keys   Keys
	Portal Portal
	Modes  Modes
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.TLSPolicy == "" {
		o.TLSPolicy = TLSOpportunistic
	}
	if o.HeloName == "" {
		o.HeloName = "localhost"
	}
	if o.Port == 0 {
		o.Port = 25
	}
	if o.MaxConnsPerDomain <= 0 {
		o.MaxConnsPerDomain = 4
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.SmarthostTLS == "" {
		o.SmarthostTLS = SmarthostSTARTTLS
	}
	if o.MessagesPerConn <= 0 {
		o.MessagesPerConn = 100
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 200
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Engine delivers recipients.
type Engine struct {
	db       *store.Store
	vault    *vault.Vault
	domains  *domains.Service
	resolver *resolve.Resolver
	opts     Options
	pool     *connPool
	rate     *rateLimiter
	metrics  *metrics
	modes    *modeCache
}

// New returns an engine.
func New(db *store.Store, v *vault.Vault, d *domains.Service, r *resolve.Resolver, opts Options) (*Engine, error) {
	opts.defaults()
	if opts.TLSPolicy != TLSOpportunistic && opts.TLSPolicy != TLSRequired {
		return nil, fmt.Errorf("delivery: unknown TLS policy %q", opts.TLSPolicy)
	}
	if opts.SmarthostTLS != SmarthostSTARTTLS && opts.SmarthostTLS != SmarthostImplicit {
		return nil, fmt.Errorf("delivery: unknown smarthost TLS mode %q", opts.SmarthostTLS)
	}
	if opts.Smarthost != "" {
		if _, _, err := net.SplitHostPort(opts.Smarthost); err != nil {
			return nil, fmt.Errorf("delivery: smarthost %q: %w", opts.Smarthost, err)
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{db: db, vault: v, domains: d, resolver: r, opts: opts, rate: newRateLimiter(opts.DomainRates), metrics: m,
		modes: newModeCache(opts.Modes, opts.Now),
		pool:  newConnPool(opts.MaxConns, opts.MaxConnsPerDomain, opts.IdleTimeout, func(n int) { m.openConns.Set(float64(n)) })}
	e.pool.startJanitor(opts.Now)
	return e, nil
}

// SetSecureLine sets Options.Keys, Portal and Modes on an engine built
// before them (the composition root builds the key store and the portal
// after the engine, which SecureLine's TLS probe uses). Call it before
// the engine delivers anything; it is not safe during delivery.
func (e *Engine) SetSecureLine(k Keys, p Portal, m Modes) {
	e.opts.Keys, e.opts.Portal, e.opts.Modes = k, p, m
	e.modes = newModeCache(m, e.opts.Now)
}

// Close closes pooled connections (saying QUIT) and stops closing idle
// ones; connections in use are closed when their workers finish.
func (e *Engine) Close() { e.pool.closeAll() }

// claimed is a recipient this node holds a lease on.
type claimed struct {
	MessageID string
	Index     int
	AccountID string
	Address   string
	Attempts  int
	ExpiresAt time.Time
	// Owner identifies the claim holding the lease.
	Owner string
	// OwnBody: the recipient has a composed body of its own
	// (message_recipients.body_sealed), sent in a transaction of its own.
	OwnBody bool
	// Method is SecureLine's decision for the recipient
	// (message_recipients.enc_method): "" (none: the TLS policy alone
	// applies), tls, tls_opportunistic, pgp or smime.
	Method string
}

// claim leases up to BatchSize due recipients of domain.
func (e *Engine) claim(ctx context.Context, domain string) ([]claimed, error) {
	now := e.opts.Now()
	lease := store.Micros(now.Add(e.opts.Lease))
	owner := store.NewID()
	var out []claimed
	err := e.db.InTx(ctx, func(tx store.Tx) error {
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE SKIP LOCKED" // nodes claim disjoint rows
		}
		rows, err := tx.Query(ctx, `UPDATE message_recipients SET lease_until = $1, lease_owner = $5
			WHERE (message_id, rcpt_index) IN (SELECT message_id, rcpt_index FROM message_recipients
				WHERE domain = $2 AND state IN ('queued', 'deferred') AND next_attempt_at <= $3 AND lease_until < $3
				ORDER BY priority, next_attempt_at LIMIT $4`+lock+`)
			RETURNING message_id, rcpt_index, account_id, address, attempts, expires_at, body_sealed IS NOT NULL, enc_method`,
			lease, domain, store.Micros(now), e.opts.BatchSize, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := claimed{Owner: owner}
			var expires int64
			if err := rows.Scan(&c.MessageID, &c.Index, &c.AccountID, &c.Address, &c.Attempts, &expires, &c.OwnBody, &c.Method); err != nil {
				return err
			}
			c.ExpiresAt = store.FromMicros(expires)
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim recipients of %s: %w", domain, err)
	}
	return out, nil
}

// DeliverDomain delivers due recipients of domain until none is left or
// budget has passed, and reports whether work remains.
func (e *Engine) DeliverDomain(ctx context.Context, domain string, budget time.Duration) (bool, error) {
	deadline := e.opts.Now().Add(budget)
	for {
		batch, err := e.claim(ctx, domain)
		if err != nil {
			return true, err
		}
		if len(batch) == 0 {
			return false, nil
		}
		stop := e.keepLeased(ctx, batch[0].Owner)
		rec := e.newRecorder(ctx)
		throttled := e.deliverBatch(ctx, domain, batch, rec.add)
		err = rec.close()
		stop()
		if err != nil {
			return true, err
		}
		if throttled {
			return true, nil // the rate limit handed the rest back for later
		}
		if len(batch) < e.opts.BatchSize {
			return false, nil
		}
		if e.opts.Now().After(deadline) || ctx.Err() != nil {
			return true, nil
		}
	}
}

// keepLeased extends the lease of a claim while it is being delivered,
// so a slow remote does not let another node take the recipients over; a
// node that dies stops extending, and its recipients are free within a
// lease. The returned func stops it.
func (e *Engine) keepLeased(ctx context.Context, owner string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(e.opts.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := e.db.Writer().Exec(ctx, "UPDATE message_recipients SET lease_until = $1 WHERE lease_owner = $2 AND lease_until > 0",
					store.Micros(e.opts.Now().Add(e.opts.Lease)), owner); err != nil {
					e.opts.Logger.Warn("extend delivery lease", "error", err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// group is one message's claimed recipients at the domain that share a
// body and a transport requirement: all those without a body of their
// own, split into those that require verified TLS (method tls) and the
// others; or one recipient that has its own body or is encrypted to its
// own key (pgp, smime).
type group struct {
	messageID string
	accountID string
	rcpts     []claimed
	// ownBody: the group is the one recipient whose own body it sends.
	ownBody bool
	// method is the recipients' SecureLine method: pgp, smime, tls, or ""
	// for the TLS policy alone (no decision, or tls_opportunistic).
	method string
}

func groupByMessage(batch []claimed) []*group {
	var out []*group
	type key struct {
		messageID string
		tls       bool
	}
	byKey := map[key]*group{}
	for _, c := range batch {
		method := groupMethod(c.Method)
		if c.OwnBody || (method != "" && method != methodTLS) {
			out = append(out, &group{messageID: c.MessageID, accountID: c.AccountID, rcpts: []claimed{c}, ownBody: c.OwnBody, method: method})
			continue
		}
		k := key{c.MessageID, method == methodTLS}
		g := byKey[k]
		if g == nil {
			g = &group{messageID: c.MessageID, accountID: c.AccountID, method: method}
			byKey[k] = g
			out = append(out, g)
		}
		g.rcpts = append(g.rcpts, c)
	}
	return out
}

// deliverBatch delivers a claimed batch over up to MaxConnsPerDomain
// connections, handing each message's outcomes to record as soon as the
// remote has answered. Messages the domain's rate limit holds back are
// handed back unattempted; it reports whether that happened.
func (e *Engine) deliverBatch(ctx context.Context, domain string, batch []claimed, record func([]outcome)) (throttled bool) {
	groups := groupByMessage(batch)
	hosts, err := e.hosts(ctx, domain)
	if err != nil {
		record(e.failAll(batch, err))
		return false
	}
	var held holdback
	work := make(chan *group)
	workers := min(e.opts.MaxConnsPerDomain, len(groups))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *smtpConn
			defer func() {
				if conn != nil {
					e.release(domain, conn)
				}
			}()
			for g := range work {
				if ok, after := e.admit(ctx, domain); !ok {
					held.add(g, after)
					continue
				}
				var out []outcome
				conn, out = e.deliverGroup(ctx, domain, hosts, conn, g)
				if len(out) > 0 { // a portal deposit recorded its own
					record(out)
				}
			}
		}()
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
	return e.handBack(ctx, &held)
}

// backoff is the wait before attempt n+1: 1 minute doubling up to 2
// hours, with ±20% jitter so retries of a failed domain spread out.
func backoff(attempts int) time.Duration {
	d := 2 * time.Hour
	if attempts < 8 {
		d = min(time.Minute<<attempts, 2*time.Hour)
	}
	jitter := 0.8 + 0.4*rand.Float64() //nolint:gosec // jitter, not security
	return time.Duration(float64(d) * jitter)
}

// sanitizeReply keeps a remote reply printable and short for storage.
func sanitizeReply(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

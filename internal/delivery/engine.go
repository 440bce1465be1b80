// Package delivery is the delivery engine: for each destination domain it
// claims the recipients that are due (a lease, so a crashed node's work is
// taken over), signs each message with the sender domain's DKIM keys
// (RSA-2048 and Ed25519), resolves the domain's mail hosts (MX in
// preference order, or a static route), and delivers over reused,
// pipelined SMTP connections under the configured STARTTLS policy. Every
// recipient's outcome (delivered, deferred with exponential backoff and
// jitter, bounced, suppressed) is recorded with the remote host, the TLS
// version and cipher and the server's reply.
package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/domains"
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
	// MaxConnsPerDomain bounds parallel connections to one domain.
	MaxConnsPerDomain int
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
	metrics  *metrics
}

// New returns an engine.
func New(db *store.Store, v *vault.Vault, d *domains.Service, r *resolve.Resolver, opts Options) (*Engine, error) {
	opts.defaults()
	if opts.TLSPolicy != TLSOpportunistic && opts.TLSPolicy != TLSRequired {
		return nil, fmt.Errorf("delivery: unknown TLS policy %q", opts.TLSPolicy)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Engine{db: db, vault: v, domains: d, resolver: r, opts: opts, pool: newConnPool(), metrics: m}, nil
}

// Close closes pooled connections.
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
			RETURNING message_id, rcpt_index, account_id, address, attempts, expires_at`,
			lease, domain, store.Micros(now), e.opts.BatchSize, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := claimed{Owner: owner}
			var expires int64
			if err := rows.Scan(&c.MessageID, &c.Index, &c.AccountID, &c.Address, &c.Attempts, &expires); err != nil {
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
		e.deliverBatch(ctx, domain, batch, rec.add)
		err = rec.close()
		stop()
		if err != nil {
			return true, err
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

// group is one message's claimed recipients at the domain.
type group struct {
	messageID string
	accountID string
	rcpts     []claimed
}

func groupByMessage(batch []claimed) []*group {
	var out []*group
	byID := map[string]*group{}
	for _, c := range batch {
		g := byID[c.MessageID]
		if g == nil {
			g = &group{messageID: c.MessageID, accountID: c.AccountID}
			byID[c.MessageID] = g
			out = append(out, g)
		}
		g.rcpts = append(g.rcpts, c)
	}
	return out
}

// deliverBatch delivers a claimed batch over up to MaxConnsPerDomain
// connections, handing each message's outcomes to record as soon as the
// remote has answered.
func (e *Engine) deliverBatch(ctx context.Context, domain string, batch []claimed, record func([]outcome)) {
	groups := groupByMessage(batch)
	hosts, err := e.hosts(ctx, domain)
	if err != nil {
		record(e.failAll(batch, err))
		return
	}
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
				var out []outcome
				conn, out = e.deliverGroup(ctx, domain, hosts, conn, g)
				record(out)
			}
		}()
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
}

// host is a place to connect to for a domain.
type host struct {
	name string // for TLS verification and reports
	port string
}

// hosts returns where to deliver domain: its static route, or its MX
// hosts in preference order.
func (e *Engine) hosts(ctx context.Context, domain string) ([]host, error) {
	route, ok := e.opts.Routes[domain]
	if !ok {
		route, ok = e.opts.Routes["*"]
	}
	if ok {
		name, port, err := net.SplitHostPort(route)
		if err != nil {
			return nil, fmt.Errorf("route for %s: %w", domain, err)
		}
		return []host{{name: name, port: port}}, nil
	}
	mx, err := e.resolver.MailHosts(ctx, domain)
	if err != nil {
		return nil, err
	}
	out := make([]host, len(mx))
	for i, h := range mx {
		out[i] = host{name: h.Name, port: strconv.Itoa(e.opts.Port)}
	}
	return out, nil
}

// connect opens a connection to the first host address that takes one
// under the TLS policy (RFC 5321 §5.1: MX hosts in preference order, each
// of their addresses in turn).
func (e *Engine) connect(ctx context.Context, hosts []host) (*smtpConn, error) {
	var errs []error
	for _, h := range hosts {
		addrs, err := e.resolver.Addrs(ctx, h.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.name, err))
			continue
		}
		for _, ip := range addrs {
			c, err := e.connectHost(ctx, h, net.JoinHostPort(ip, h.port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, fmt.Errorf("%s (%s): %w", h.name, ip, err))
		}
	}
	return nil, errors.Join(errs...)
}

func (e *Engine) connectHost(ctx context.Context, h host, addr string) (*smtpConn, error) {
	c, err := dialSMTP(ctx, addr, h.name, e.opts.HeloName, e.opts.Timeout)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{ServerName: h.name, RootCAs: e.opts.RootCAs, MinVersion: tls.VersionTLS12}
	err = c.startTLS(ctx, cfg, e.opts.HeloName)
	switch {
	case err == nil:
		return c, nil
	case e.opts.TLSPolicy == TLSRequired:
		c.close()
		return nil, fmt.Errorf("TLS required: %w", err)
	case errors.Is(err, errNoStartTLS):
		return c, nil // opportunistic: clear text to a server without STARTTLS
	}
	// Opportunistic, and the certificate did not verify: encrypt anyway,
	// on a fresh connection (the failed handshake ended this one).
	c.close()
	c, err = dialSMTP(ctx, addr, h.name, e.opts.HeloName, e.opts.Timeout)
	if err != nil {
		return nil, err
	}
	cfg.InsecureSkipVerify = true //nolint:gosec // opportunistic TLS (RFC 7435): encryption without authentication beats clear text
	if err := c.startTLS(ctx, cfg, e.opts.HeloName); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// release returns a connection to the idle pool, or closes it when it
// has carried its share.
func (e *Engine) release(domain string, c *smtpConn) {
	if c.sent >= e.opts.MessagesPerConn {
		c.close()
		return
	}
	c.lastUsed = e.opts.Now()
	e.pool.put(domain, c)
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

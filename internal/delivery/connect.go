package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sealpost/sealpost/internal/mtasts"
)

// Smarthost TLS modes.
const (
	// SmarthostSTARTTLS connects in clear text and requires STARTTLS
	// (RFC 3207) before anything else.
	SmarthostSTARTTLS = "starttls"
	// SmarthostImplicit speaks TLS from the first byte (RFC 8314 §3,
	// usually port 465).
	SmarthostImplicit = "implicit"
)

// host is a place to connect to for a domain.
type host struct {
	name   string // for TLS verification and reports
	port   string
	domain string // the destination domain (its connection limit)
	// sts is the MTA-STS mode applying to this host: mtasts.ModeEnforce
	// (verified TLS or nothing), mtasts.ModeTesting (failures counted),
	// or "" (none).
	sts       string
	smarthost bool
}

// errSTSNoMX: an enforced MTA-STS policy allows none of the domain's MX
// hosts; the recipients are deferred, never sent elsewhere.
var errSTSNoMX = errors.New("the MTA-STS policy allows none of the MX hosts")

// hosts returns where to deliver domain: the smarthost, its static
// route, or its MX hosts in preference order, filtered by its MTA-STS
// policy. Lookups get Options.Timeout like any command, so a DNS server
// that does not answer defers the batch within it rather than after the
// resolver's own retries (5 s × 2 tries × servers).
func (e *Engine) hosts(ctx context.Context, domain string) ([]host, error) {
	if e.opts.Smarthost != "" {
		name, port, _ := net.SplitHostPort(e.opts.Smarthost) // checked in New
		return []host{{name: name, port: port, domain: domain, smarthost: true}}, nil
	}
	route, ok := e.opts.Routes[domain]
	if !ok {
		route, ok = e.opts.Routes["*"]
	}
	if ok {
		name, port, err := net.SplitHostPort(route)
		if err != nil {
			return nil, fmt.Errorf("route for %s: %w", domain, err)
		}
		return []host{{name: name, port: port, domain: domain}}, nil
	}
	lctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	mx, err := e.resolver.MailHosts(lctx, domain)
	cancel()
	if err != nil {
		return nil, err
	}
	out := make([]host, len(mx))
	for i, h := range mx {
		out[i] = host{name: h.Name, port: strconv.Itoa(e.opts.Port), domain: domain}
	}
	return e.applySTS(ctx, domain, out)
}

// applySTS applies domain's MTA-STS policy to its MX hosts (RFC 8461
// §4.1, §5): under enforce only matching hosts remain, each requiring
// TLS verified for its name; under testing every host remains and
// mismatches are counted.
func (e *Engine) applySTS(ctx context.Context, domain string, hosts []host) ([]host, error) {
	if e.opts.MTASTS == nil {
		return hosts, nil
	}
	policy, err := e.opts.MTASTS.Get(ctx, domain)
	if err != nil {
		e.metrics.stsFetchErrors.Inc()
		e.opts.Logger.Warn("MTA-STS policy discovery failed", "domain", domain, "error", err, "cached_policy", policy != nil)
	}
	if policy == nil {
		return hosts, nil // RFC 8461 §5.1: no usable policy, deliver as usual
	}
	var matching []host
	for i := range hosts {
		hosts[i].sts = policy.Mode
		if policy.Matches(hosts[i].name) {
			matching = append(matching, hosts[i])
		}
	}
	if len(matching) == len(hosts) {
		return hosts, nil
	}
	e.metrics.stsFailures.WithLabelValues(policy.Mode, "mx_mismatch").Inc()
	if policy.Mode == mtasts.ModeTesting {
		// RFC 8461 §5: testing never blocks delivery; TLS is still
		// checked (and counted) on every host.
		return hosts, nil
	}
	if len(matching) == 0 {
		names := make([]string, len(hosts))
		for i, h := range hosts {
			names[i] = h.name
		}
		return nil, fmt.Errorf("%w of %s (%s)", errSTSNoMX, domain, strings.Join(names, ", "))
	}
	return matching, nil
}

// connect opens a connection to the first host address that takes one
// under the TLS policy (RFC 5321 §5.1: MX hosts in preference order, each
// of their addresses in turn), within the node's connection limits. With
// verified, only a connection whose TLS verifies for the host name will
// do, whatever the policy; hosts that fail it give a *tlsFailure.
func (e *Engine) connect(ctx context.Context, hosts []host, verified bool) (*smtpConn, error) {
	if len(hosts) == 0 {
		return nil, errors.New("no host to connect to")
	}
	domain := hosts[0].domain
	if err := e.pool.acquire(ctx, domain); err != nil {
		return nil, fmt.Errorf("waiting for a connection slot: %w", err)
	}
	var errs []error
	for _, h := range hosts {
		lctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
		addrs, err := e.resolver.Addrs(lctx, h.name)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.name, err))
			continue
		}
		for _, ip := range addrs {
			c, err := e.connectHost(ctx, h, net.JoinHostPort(ip, h.port), verified)
			if err == nil {
				c.onClose = func() { e.pool.free(domain) }
				return c, nil
			}
			errs = append(errs, fmt.Errorf("%s (%s): %w", h.name, ip, err))
		}
	}
	e.pool.free(domain)
	return nil, errors.Join(errs...)
}

// tlsFailure: a host answered but verified TLS could not be set up with
// it (no STARTTLS, a certificate that does not verify for its name, a
// failed handshake). For recipients that require verified TLS this is
// what secureline.Fallback acts on.
type tlsFailure struct {
	host string
	err  error
}

func (f *tlsFailure) Error() string { return f.err.Error() }
func (f *tlsFailure) Unwrap() error { return f.err }

// what says in a few words why the host gave no verified TLS.
func (f *tlsFailure) what() string {
	if errors.Is(f.err, errNoStartTLS) {
		return f.host + " does not offer STARTTLS"
	}
	return f.host + " offers no verified TLS (the certificate or the handshake failed)"
}

func (e *Engine) connectHost(ctx context.Context, h host, addr string, verified bool) (*smtpConn, error) {
	if h.smarthost {
		return e.connectSmarthost(ctx, h, addr)
	}
	c, err := dialSMTP(ctx, addr, h.name, e.opts.HeloName, e.opts.Timeout)
	if err != nil {
		return nil, err
	}
	cfg := e.tlsConfig(h.name)
	err = c.startTLS(ctx, cfg, e.opts.HeloName)
	switch {
	case err == nil:
		c.verified = true
		return c, nil
	case h.sts == mtasts.ModeEnforce:
		// RFC 8461 §4.2, §5: under enforce, no verified TLS, no delivery
		// (never clear text, never unverified TLS).
		c.close()
		e.metrics.stsFailures.WithLabelValues(mtasts.ModeEnforce, "tls").Inc()
		return nil, &tlsFailure{host: h.name, err: fmt.Errorf("MTA-STS policy requires TLS verified for %s: %w", h.name, err)}
	case h.sts == mtasts.ModeTesting:
		e.metrics.stsFailures.WithLabelValues(mtasts.ModeTesting, "tls").Inc()
	}
	if verified {
		// SecureLine decided verified TLS for these recipients (RFC 3207
		// with the certificate checked for the host name): never less.
		c.close()
		return nil, &tlsFailure{host: h.name, err: fmt.Errorf("verified TLS required: %w", err)}
	}
	switch {
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

func (e *Engine) tlsConfig(name string) *tls.Config {
	return &tls.Config{ServerName: name, RootCAs: e.opts.RootCAs, MinVersion: tls.VersionTLS12}
}

// connectSmarthost connects to the relay: TLS verified for its name
// always (implicit or STARTTLS), then AUTH when credentials are set.
func (e *Engine) connectSmarthost(ctx context.Context, h host, addr string) (*smtpConn, error) {
	var c *smtpConn
	var err error
	if e.opts.SmarthostTLS == SmarthostImplicit {
		if c, err = dialConn(ctx, addr, h.name, e.opts.HeloName, e.opts.Timeout, e.tlsConfig(h.name)); err != nil {
			return nil, fmt.Errorf("smarthost: %w", err)
		}
	} else {
		if c, err = dialSMTP(ctx, addr, h.name, e.opts.HeloName, e.opts.Timeout); err != nil {
			return nil, fmt.Errorf("smarthost: %w", err)
		}
		if err := c.startTLS(ctx, e.tlsConfig(h.name), e.opts.HeloName); err != nil {
			c.close()
			return nil, fmt.Errorf("smarthost requires verified TLS: %w", err)
		}
	}
	c.verified = true // verified for the smarthost: the hop we control
	if e.opts.SmarthostUsername != "" {
		if err := c.auth(e.opts.SmarthostUsername, e.opts.SmarthostPassword); err != nil {
			c.close()
			return nil, fmt.Errorf("smarthost: %w", err)
		}
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

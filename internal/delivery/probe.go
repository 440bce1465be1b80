package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/sealpost/sealpost/internal/mtasts"
)

// TLSProbe is what ProbeTLS learned of a destination domain: whether mail
// to it can go over TLS verified for the receiving host's name. Detail
// says why in a few words (host names and reasons, never mail content).
type TLSProbe struct {
	// Verified: a host delivery would use offers STARTTLS (RFC 3207) with
	// a certificate that verifies for its name under the engine's trust
	// anchors, or the domain's MTA-STS policy is in enforce mode (RFC
	// 8461 §5: then delivery happens over verified TLS or not at all).
	Verified bool
	// MTASTSEnforce: the domain has an MTA-STS policy in enforce mode.
	MTASTSEnforce bool
	// Host is the host that verified, or the first one that answered.
	Host   string
	Detail string
}

// ProbeTLS checks, without sending anything, whether domain's mail can go
// over verified TLS: it finds the hosts delivery would use (smarthost,
// route, or MX hosts filtered by MTA-STS) and, unless an enforced MTA-STS
// policy already guarantees it, connects to each in preference order
// (RFC 5321 §5.1) saying EHLO, STARTTLS and QUIT until one verifies. Each
// step gets Options.Timeout, and ctx bounds the whole. The error reports
// a domain that could not be resolved; a host that does not answer or
// fails TLS is a negative answer, not an error.
func (e *Engine) ProbeTLS(ctx context.Context, domain string) (TLSProbe, error) {
	hosts, err := e.hosts(ctx, domain)
	if errors.Is(err, errSTSNoMX) {
		return TLSProbe{MTASTSEnforce: true, Detail: "the MTA-STS policy allows none of the MX hosts"}, nil
	}
	if err != nil {
		return TLSProbe{}, fmt.Errorf("probe %s: %w", domain, err)
	}
	if len(hosts) == 0 {
		return TLSProbe{Detail: "no mail host"}, nil
	}
	if hosts[0].sts == mtasts.ModeEnforce {
		// RFC 8461 §4.2: every host left requires TLS verified for its
		// name; delivery never falls to anything less.
		return TLSProbe{Verified: true, MTASTSEnforce: true, Host: hosts[0].name, Detail: "MTA-STS policy in enforce mode"}, nil
	}
	var first TLSProbe
	for _, h := range hosts {
		p := e.probeHost(ctx, h)
		if p.Verified {
			return p, nil
		}
		if first.Detail == "" {
			first = p
		}
		if ctx.Err() != nil {
			break
		}
	}
	return first, nil
}

// probeHost tries each address of h until one answers SMTP.
func (e *Engine) probeHost(ctx context.Context, h host) TLSProbe {
	lctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	addrs, err := e.resolver.Addrs(lctx, h.name)
	cancel()
	if err != nil {
		return TLSProbe{Host: h.name, Detail: h.name + ": no address"}
	}
	out := TLSProbe{Host: h.name, Detail: h.name + ": no answer"}
	for _, ip := range addrs {
		c, err := dialSMTP(ctx, net.JoinHostPort(ip, h.port), h.name, e.opts.HeloName, e.opts.Timeout)
		if err != nil {
			continue
		}
		err = c.startTLS(ctx, e.tlsConfig(h.name), e.opts.HeloName)
		c.close()
		switch {
		case err == nil:
			detail := "STARTTLS verified for " + h.name
			if h.smarthost {
				detail += " (the smarthost)"
			}
			return TLSProbe{Verified: true, Host: h.name, Detail: detail}
		case errors.Is(err, errNoStartTLS):
			return TLSProbe{Host: h.name, Detail: h.name + " does not offer STARTTLS"}
		default:
			out.Detail = h.name + ": TLS does not verify"
		}
	}
	return out
}

// Package resolve looks up the DNS records mail delivery and domain
// verification need (MX, TXT), through the system resolver or, when
// configured (dns.servers), through specific servers, which is how tests
// and benchmarks point Sealpost at a DNS server on loopback.
package resolve

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Resolver answers MX and TXT queries.
type Resolver struct {
	r *net.Resolver
}

// New returns a resolver asking servers ("host:port") in turn, or the
// system's resolver when servers is empty.
func New(servers []string) *Resolver {
	if len(servers) == 0 {
		return &Resolver{r: net.DefaultResolver}
	}
	var next atomic.Uint32
	d := net.Dialer{Timeout: 5 * time.Second}
	return &Resolver{r: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			server := servers[int(next.Add(1))%len(servers)]
			return d.DialContext(ctx, network, server)
		},
	}}
}

// Host is one host to try for a domain, in order.
type Host struct {
	Name       string
	Preference uint16
}

// ErrNullMX: the domain publishes a null MX (RFC 7505): it accepts no mail.
var ErrNullMX = errors.New("resolve: the domain accepts no mail (null MX)")

// ErrNoSuchDomain: the domain does not exist (NXDOMAIN), a permanent
// failure; other lookup errors are temporary.
var ErrNoSuchDomain = errors.New("resolve: no such domain")

// MailHosts returns the hosts to deliver a domain's mail to, most
// preferred first: its MX records (RFC 5321 §5.1), or the domain itself
// when it has none (the implicit MX).
func (r *Resolver) MailHosts(ctx context.Context, domain string) ([]Host, error) {
	mxs, err := r.r.LookupMX(ctx, domain)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		// No MX records: the domain's own address records, if it has any.
		if _, aerr := r.r.LookupHost(ctx, domain); aerr != nil {
			var aErr *net.DNSError
			if errors.As(aerr, &aErr) && aErr.IsNotFound {
				return nil, ErrNoSuchDomain
			}
			return nil, aerr
		}
		return []Host{{Name: domain}}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, ErrNullMX
	}
	hosts := make([]Host, 0, len(mxs))
	for _, mx := range mxs {
		hosts = append(hosts, Host{Name: strings.TrimSuffix(mx.Host, "."), Preference: mx.Pref})
	}
	// LookupMX sorts by preference and shuffles equal ones (§5.1 asks
	// for that); keep its order, stably.
	slices.SortStableFunc(hosts, func(a, b Host) int { return int(a.Preference) - int(b.Preference) })
	return hosts, nil
}

// TXT returns the TXT records of name, each record's strings joined.
// A name with no records gives an empty list, not an error.
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, error) {
	txt, err := r.r.LookupTXT(ctx, name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, nil
	}
	return txt, err
}

// Addrs returns the IP addresses of a host name (an IP address is its own).
func (r *Resolver) Addrs(ctx context.Context, host string) ([]string, error) {
	if net.ParseIP(host) != nil {
		return []string{host}, nil
	}
	return r.r.LookupHost(ctx, host)
}

package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"
)

// fetcher gets policy files over HTTPS (RFC 8461 §3.3).
type fetcher struct {
	client *http.Client
}

func newFetcher(r Resolver, roots *x509.CertPool, port int, timeout time.Duration) *fetcher {
	d := net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		Proxy: nil, // the policy host is reached directly, as the MX will be
		// The policy host is resolved through the configured resolver
		// (dns.servers), like the MX hosts, and reached on port (443).
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, err := r.Addrs(ctx, host)
			if err != nil {
				return nil, err
			}
			var errs []error
			for _, ip := range ips {
				c, err := d.DialContext(ctx, network, net.JoinHostPort(ip, strconv.Itoa(port)))
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
			return nil, fmt.Errorf("connect to %s: %w", host, errors.Join(errs...))
		},
		// RFC 8461 §3.3: the certificate must be valid for the
		// mta-sts host (RFC 6125); net/http verifies it against roots
		// for the URL's host name.
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		DisableKeepAlives:     true, // one fetch per domain and max_age
		ForceAttemptHTTP2:     true,
	}
	return &fetcher{client: &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// RFC 8461 §3.3: senders must not follow redirects.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// fetch gets and parses https://mta-sts.<domain>/.well-known/mta-sts.txt,
// returning the policy and its text.
func (f *fetcher) fetch(ctx context.Context, domain string) (*Policy, []byte, error) {
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch policy of %s: %w", domain, err)
	}
	defer resp.Body.Close()
	// RFC 8461 §3.3: only a 200 answer is a policy (a redirect is not
	// followed, so it lands here too).
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetch policy of %s: HTTP status %d", domain, resp.StatusCode)
	}
	// RFC 8461 §3.2: the media type is text/plain (parameters such as
	// charset are allowed).
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, nil, fmt.Errorf("fetch policy of %s: content type %q is not text/plain", domain, resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("fetch policy of %s: %w", domain, err)
	}
	if len(body) > MaxPolicySize {
		return nil, nil, fmt.Errorf("fetch policy of %s: larger than %d bytes", domain, MaxPolicySize)
	}
	p, err := Parse(body)
	if err != nil {
		return nil, nil, fmt.Errorf("policy of %s: %w", domain, err)
	}
	return p, body, nil
}

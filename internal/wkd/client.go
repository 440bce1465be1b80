package wkd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/netguard"
	"github.com/sealpost/sealpost/internal/pgpmime"
)

// Resolver resolves the directory's host names (package resolve's
// Resolver, so that dns.servers applies as for MX hosts). A name that
// does not exist is a *net.DNSError with IsNotFound.
type Resolver interface {
	Addrs(ctx context.Context, host string) ([]string, error)
}

// ClientOptions configure a Client. The zero value asks the system's
// resolver, trusts the system's roots, reaches public addresses only on
// port 443, and uses the package defaults.
type ClientOptions struct {
	// Resolver resolves host names (nil: the system's resolver).
	Resolver Resolver
	// RootCAs verify the directory's certificate (nil: the system's).
	RootCAs *x509.CertPool
	// Port is the HTTPS port of directory hosts (default 443; tests
	// point it at a loopback server).
	Port int
	// Timeout bounds one lookup, both methods (default DefaultTimeout).
	Timeout time.Duration
	// MaxKeyBytes bounds an answer (default DefaultMaxKeyBytes).
	MaxKeyBytes int64
	// AllowPrivateNetworks lets lookups reach loopback, private and
	// link-local addresses (development and tests only: otherwise a
	// recipient domain could point this server at its own network).
	AllowPrivateNetworks bool
	// Now is the clock keys are validated at (default time.Now).
	Now func() time.Time
}

// Client looks keys up in Web Key Directories. Safe for concurrent use;
// it keeps nothing between lookups (Cache does).
type Client struct {
	http *http.Client
	opts ClientOptions
}

// maxRedirects bounds the redirects a lookup follows (all to https).
const maxRedirects = 3

// NewClient returns a client.
func NewClient(opts ClientOptions) *Client {
	if opts.Port == 0 {
		opts.Port = 443
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxKeyBytes <= 0 {
		opts.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Resolver == nil {
		opts.Resolver = systemResolver{}
	}
	tr := &http.Transport{
		// No proxy from the environment: the guard must see the
		// directory's own address.
		Proxy:                 nil,
		DialContext:           dialer(opts),
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs},
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
		DisableKeepAlives:     true, // a domain is asked at most once per cache period
		ForceAttemptHTTP2:     true,
	}
	return &Client{opts: opts, http: &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		// A redirect is followed only to https: the key must come over
		// verified TLS all the way.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errInsecureRedirect
			}
			if len(via) >= maxRedirects {
				return errTooManyRedirects
			}
			return nil
		},
	}}
}

var (
	errInsecureRedirect = errors.New("redirect to a URL that is not https")
	errTooManyRedirects = errors.New("too many redirects")
	errTooLarge         = errors.New("answer too large")
)

// noHostError: the host does not exist in DNS or none of its addresses
// answered a connection, the case in which the draft falls back from the
// advanced to the direct method.
type noHostError struct {
	err      error
	notFound bool // DNS says the name does not exist
}

func (e *noHostError) Error() string { return e.err.Error() }
func (e *noHostError) Unwrap() error { return e.err }

// dialer resolves through opts.Resolver and connects to opts.Port on
// each address in turn, refusing non-public ones (netguard) unless
// AllowPrivateNetworks. A connection attempt gets half the lookup's time,
// so that the direct method still has time after an advanced host that
// does not answer.
func dialer(opts ClientOptions) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: opts.Timeout / 2}
	if !opts.AllowPrivateNetworks {
		d.Control = netguard.Control
	}
	port := strconv.Itoa(opts.Port)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := opts.Resolver.Addrs(ctx, host)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound || err == nil && len(ips) == 0 {
			return nil, &noHostError{err: fmt.Errorf("no such host: %w", errOr(err)), notFound: true}
		}
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip, port))
			if err == nil {
				return c, nil
			}
			if errors.Is(err, netguard.ErrDestination) {
				return nil, err // the host exists; it must not be reached
			}
			errs = append(errs, err)
		}
		return nil, &noHostError{err: errors.Join(errs...)}
	}
}

func errOr(err error) error {
	if err == nil {
		return errors.New("no addresses")
	}
	return err
}

// systemResolver is the zero-value Resolver.
type systemResolver struct{}

func (systemResolver) Addrs(ctx context.Context, host string) ([]string, error) {
	return net.DefaultResolver.LookupHost(ctx, host)
}

// Found is a key a directory gave for an address.
type Found struct {
	// Key validated for the address when found.
	Key *pgpmime.PublicKey
	// Armored is that key alone, armored (what the cache keeps).
	Armored []byte
	// Method is "advanced" or "direct".
	Method string
}

// Lookup asks the address's domain's directory for its key (draft
// section 3.1): the advanced method, and the direct method only when the
// advanced host does not exist or does not answer. The error is a
// *LookupError: ErrNoKey when the directory has no key usable for the
// address, ErrUnavailable when it could not be asked.
func (c *Client) Lookup(ctx context.Context, address string) (*Found, error) {
	local, domain, err := splitAddress(address)
	if err != nil {
		return nil, noKey("the address cannot have a directory", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	method := "advanced"
	body, err := c.get(ctx, advancedURL(local, domain))
	var nh *noHostError
	if errors.As(err, &nh) {
		method = "direct"
		body, err = c.get(ctx, directURL(local, domain))
		if errors.As(err, &nh) && nh.notFound {
			// Neither host exists: the domain has no directory, as
			// definite an answer as a 404.
			return nil, noKey("the domain has no Web Key Directory", err)
		}
	}
	if err != nil {
		return nil, err
	}
	key, armored, err := selectKey(body, address, c.opts.Now())
	if err != nil {
		return nil, err
	}
	return &Found{Key: key, Armored: armored, Method: method}, nil
}

// splitAddress returns the local part as given and the domain in lower
// case A-labels (package mail's form).
func splitAddress(address string) (local, domain string, err error) {
	a, err := mail.ParseAddress("address", address)
	if err != nil {
		return "", "", err
	}
	return a.Local, strings.ToLower(a.Domain), nil
}

// advancedURL is the draft's advanced method: the openpgpkey subdomain,
// with the domain repeated in the path (section 3.1).
func advancedURL(local, domain string) string {
	return "https://openpgpkey." + domain + "/.well-known/openpgpkey/" + domain + "/hu/" + Hash(local) + "?" + localQuery(local)
}

// directURL is the draft's direct method, on the domain itself.
func directURL(local, domain string) string {
	return "https://" + domain + "/.well-known/openpgpkey/hu/" + Hash(local) + "?" + localQuery(local)
}

// localQuery is the l= parameter: the local part unchanged (not lower
// cased), percent-escaped, so that a server may tell addresses apart
// that differ only in case (section 3.1).
func localQuery(local string) string {
	return url.Values{"l": {local}}.Encode()
}

// get fetches one URL: the body of a 200 answer (at most MaxKeyBytes),
// ErrNoKey for 404 and 410, ErrUnavailable otherwise. A *noHostError
// stays visible through errors.As for the fallback.
func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, noKey("the address makes no valid URL", nil)
	}
	req.Header.Set("Accept", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, noKey("the directory has no key for the address", nil)
	case resp.StatusCode != http.StatusOK:
		return nil, unavailable("the directory answered HTTP status "+strconv.Itoa(resp.StatusCode), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxKeyBytes+1))
	if err != nil {
		return nil, transportError(err)
	}
	if int64(len(body)) > c.opts.MaxKeyBytes {
		return nil, noKey(fmt.Sprintf("the directory's answer is larger than %d bytes", c.opts.MaxKeyBytes), errTooLarge)
	}
	return body, nil
}

// transportError classifies a failed request in words without the URL
// (url.Error's text holds it, and with it the local part).
func transportError(err error) error {
	var nh *noHostError
	var cert *tls.CertificateVerificationError
	var netErr net.Error
	reason := "the directory could not be reached"
	switch {
	case errors.As(err, &nh):
		// Keep the type: Lookup falls back on it.
		return &LookupError{Reason: "the directory's host does not exist or does not answer", Err: err}
	case errors.Is(err, netguard.ErrDestination):
		reason = "the directory's address is not allowed (private, loopback or link-local)"
	case errors.Is(err, errInsecureRedirect):
		reason = "the directory redirected to a URL that is not https"
	case errors.Is(err, errTooManyRedirects):
		reason = "the directory redirected too many times"
	case errors.As(err, &cert):
		reason = "the directory's TLS certificate does not verify"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		reason = "the directory did not answer in time"
	case errors.Is(err, context.Canceled):
		reason = "the lookup was cancelled"
	}
	return unavailable(reason, err)
}

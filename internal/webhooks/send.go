package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/internal/buildinfo"
	"github.com/sealpost/sealpost/internal/netguard"
	"github.com/sealpost/sealpost/pkg/webhook"
)

// Bounds of what is kept of a response.
const (
	maxResponseRead    = 4096 // read (and discarded) so connections can be reused
	maxResponseSnippet = 256  // kept in the log
	maxErrorLen        = 200
)

// sender POSTs signed payloads.
type sender struct {
	client *http.Client
	opts   Options
}

// publicAddr reports whether a is an address a webhook may reach unless
// AllowPrivateNetworks: cloud metadata (169.254.169.254), the node's
// loopback and the private network behind it are not the customer's
// endpoints (package netguard has the ranges).
func publicAddr(a netip.Addr) bool { return netguard.Public(a) }

func newSender(opts Options) *sender {
	dialer := &net.Dialer{
		Timeout: opts.Timeout,
		// Control sees the address actually dialled, after DNS
		// resolution, so a host name that resolves (or rebinds) to a
		// private address is refused too.
		Control: func(_, address string, _ syscall.RawConn) error {
			if opts.AllowPrivateNetworks {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return ErrDestination
			}
			return nil
		},
	}
	transport := &http.Transport{
		// No proxy from the environment: the destination check must see
		// the endpoint's address, not a proxy's.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs},
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &sender{opts: opts, client: &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout,
		// A redirect is not followed: it is the endpoint's answer, and
		// a non-2xx one (following would also let a receiver bounce
		// the request to an internal address).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// result is the outcome of one POST.
type result struct {
	code     int    // HTTP status, 0 when none came
	err      string // sanitised cause when the POST failed before a status
	response string // sanitised start of the response body
	took     time.Duration
}

func (r result) ok() bool { return r.code >= 200 && r.code < 300 }

// post sends one signed payload.
func (s *sender) post(ctx context.Context, url string, secrets []string, eventID, eventType string, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return result{err: "invalid endpoint URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Sealpost-Webhooks/"+buildinfo.Version())
	req.Header.Set(webhook.EventIDHeader, eventID)
	req.Header.Set(webhook.EventTypeHeader, eventType)
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, s.opts.Now(), secrets...))
	resp, err := s.client.Do(req)
	if err != nil {
		return result{err: describeError(err), took: time.Since(start)}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead))
	return result{code: resp.StatusCode, response: sanitize(string(head), maxResponseSnippet), took: time.Since(start)}
}

// describeError names the class of a transport failure. The error's own
// text is not kept: it quotes the URL, whose query may hold a token.
func describeError(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var opErr *net.OpError
	switch {
	case errors.Is(err, ErrDestination):
		return "destination address not allowed (private, loopback or link-local)"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timed out"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "host name not found"
		}
		return "host name lookup failed"
	case errors.As(err, &certErr):
		return "TLS certificate not trusted"
	case errors.As(err, &recErr):
		return "TLS handshake failed (not a TLS server?)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the endpoint"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "connection failed"
	case strings.Contains(err.Error(), "tls:"):
		return "TLS handshake failed"
	}
	return "request failed"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sanitize keeps printable ASCII, folds whitespace and cuts to n bytes:
// what is stored of a response must not carry control characters into
// logs or the console.
func sanitize(s string, n int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		switch {
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		case r < 0x20 || r > 0x7e:
			r = '?'
		}
		space = false
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

func (r result) describe() string {
	switch {
	case r.err != "":
		return r.err
	case r.code >= 300 && r.code < 400:
		return fmt.Sprintf("HTTP %d: redirects are not followed", r.code)
	case !r.ok():
		return fmt.Sprintf("HTTP %d", r.code)
	}
	return ""
}

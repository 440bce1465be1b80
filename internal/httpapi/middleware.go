package httpapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"time"
)

// requestState is made once per request by begin and shared by pointer
// through the context, so that inner layers can report facts outwards
// (the route ServeMux matched) although every r.WithContext makes a new
// *http.Request.
type requestState struct {
	id      string
	start   time.Time
	w       *responseWriter
	pattern string // ServeMux pattern matched; "" when none
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// RequestID returns the id of the request ctx belongs to, as echoed in
// its X-Request-Id header, or "" outside a request served by a Server.
// Handlers pass it to the audit log.
func RequestID(ctx context.Context) string { return requestID(ctx) }

func requestID(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.id
	}
	return ""
}

// maxRequestIDLen bounds an incoming X-Request-Id.
const maxRequestIDLen = 64

// validRequestID reports whether a client's X-Request-Id may be adopted:
// 1 to 64 characters of [A-Za-z0-9._-], so it is safe in logs and headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// begin is the outermost layer: it fixes the request id (the client's
// when valid, else a fresh random one), echoes it, wraps the response
// writer to observe status and size, and records metrics and the access
// log when the request ends, even when it ends in a panic.
func (s *Server) begin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if client, ok := s.forwardedClient(r); ok {
			// Everything downstream (logs, throttle, auth policy) sees
			// the client, as if the proxy were not there.
			r.RemoteAddr = net.JoinHostPort(client.String(), "0")
		}
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = rand.Text()
		}
		rw := &responseWriter{ResponseWriter: w, beforeHeader: contentSecurityPolicy}
		st := &requestState{id: id, start: time.Now(), w: rw}
		rw.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		defer s.observe(r, st)
		next.ServeHTTP(rw, r)
	})
}

// forwardedClient returns the client address a trusted reverse proxy
// reports: walking X-Forwarded-For from the right (the entry the nearest
// proxy added), the first address that is not itself a trusted proxy. A
// request from an untrusted peer keeps its peer address: its header could
// say anything.
func (s *Server) forwardedClient(r *http.Request) (netip.Addr, bool) {
	if len(s.opts.TrustedProxies) == 0 {
		return netip.Addr{}, false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !s.trusted(peer.Addr()) {
		return netip.Addr{}, false
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false // a malformed hop: trust nothing further left
		}
		if !s.trusted(addr) {
			return addr.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// recoverPanics turns a handler panic into a 500 problem and keeps the
// server serving. It logs the panic value's type and the stack, never the
// value itself (it may hold request data) nor the body.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // the handler asked net/http to drop the connection
			}
			st := stateFrom(r.Context())
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("request_id", st.id),
				slog.String("route", routeLabel(st.pattern)),
				slog.String("panic_type", fmt.Sprintf("%T", v)),
				slog.String("stack", string(debug.Stack())))
			if st.w.wroteHeader {
				// Part of a response is out: abort the connection so the
				// client cannot mistake it for a whole one.
				panic(http.ErrAbortHandler)
			}
			writeProblem(w, r, NewProblem(TypeInternal, "the server failed; quote the request id to support"))
		}()
		next.ServeHTTP(w, r)
	})
}

// urlCredentialParams are query parameters that carry credentials in
// other APIs. A URL ends up in proxy logs, browser history and Referer
// headers (RFC 6750 §5.3), so Sealpost refuses them rather than ignore
// them: the caller learns to stop.
var urlCredentialParams = []string{"access_token", "api_key"}

// refuseURLCredentials answers 400 to any request whose query string
// names a credential parameter, whatever its value.
func (s *Server) refuseURLCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			q, _ := url.ParseQuery(r.URL.RawQuery)
			for name := range q {
				for _, bad := range urlCredentialParams {
					if strings.EqualFold(name, bad) {
						s.log.LogAttrs(r.Context(), slog.LevelWarn, "credential in URL refused",
							slog.String("request_id", requestID(r.Context())),
							slog.String("param", bad))
						p := NewProblem(TypeBadRequest, "credentials must be sent in headers, never in the URL")
						writeProblem(w, r, p.WithErrors(FieldError{Field: bad, Message: "not allowed in the query string"}))
						return
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps the request body at max bytes: a declared length over
// the cap is refused at once, and reads past it fail with
// *http.MaxBytesError, which the JSON decoder reports as 413.
func (s *Server) limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeProblem(w, r, problemFor(&http.MaxBytesError{Limit: max}))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

// responseWriter records the status and size of a response and lets
// header policy run just before the header is sent.
type responseWriter struct {
	http.ResponseWriter
	beforeHeader func(http.Header)
	status       int
	bytes        int64
	wroteHeader  bool
}

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || (code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols) {
		// Informational responses precede the real one; a repeated call
		// is passed on for net/http to report.
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if w.beforeHeader != nil {
		w.beforeHeader(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		// Sniff as net/http would, but before the header policy runs, so
		// an HTML body without a declared type still gets its CSP.
		if _, set := w.Header()["Content-Type"]; !set && len(b) > 0 {
			w.Header().Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher for streaming handlers.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusCode is the status sent, or 200 when the handler wrote nothing
// (net/http then sends 200).
func (w *responseWriter) statusCode() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.status
}

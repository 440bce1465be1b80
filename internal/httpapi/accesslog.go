package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// observe records the finished request in the metrics and the access log.
// The log line holds no body, query string or header values, and no
// path segment a client chose: paths carry addresses (/v1/suppressions/
// {address}) and bearer tokens (tracking, unsubscribe and portal links),
// so the matched route pattern stands for the path.
func (s *Server) observe(r *http.Request, st *requestState) {
	elapsed := time.Since(st.start)
	route := routeLabel(st.pattern)
	method := methodLabel(r.Method)
	status := st.w.statusCode()
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())

	s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
		slog.String("request_id", st.id),
		slog.String("method", method),
		slog.String("route", route),
		slog.String("path", loggedPath(r.URL.Path, st.pattern)),
		slog.Int("status", status),
		slog.Int64("bytes", st.w.bytes),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("remote_ip", remoteIP(r.RemoteAddr)))
}

// loggedPath is what the access log may show of path: nothing beyond the
// route for a matched request, and only the first segment of an
// unmatched one.
func loggedPath(path, pattern string) string {
	if pattern != "" {
		return routeLabel(pattern)
	}
	rest := strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return "/" + rest[:i] + "/…"
	}
	if len(rest) > 64 {
		return "/" + rest[:64] + "…"
	}
	return "/" + rest
}

// remoteIP is the peer address without its port. Forwarding headers are
// not trusted here; a proxy-aware deployment adds that deliberately.
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

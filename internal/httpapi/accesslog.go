package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// observe records the finished request in the metrics and the access log.
// The log line holds no body, query string or header values: the path is
// logged without its query, which may carry search terms.
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
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", st.w.bytes),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("remote_ip", remoteIP(r.RemoteAddr)))
}

// remoteIP is the peer address without its port. Forwarding headers are
// not trusted here; a proxy-aware deployment adds that deliberately.
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

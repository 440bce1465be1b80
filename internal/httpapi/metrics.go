package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// unmatchedRoute labels requests no pattern matched (404s, 405s), so
// clients cannot grow the label set by inventing paths.
const unmatchedRoute = "unmatched"

// metrics are the HTTP layer's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the collectors with reg. When a Server was already
// built on reg (tests, a restart in process), its collectors are reused.
func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		requests: registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealpost_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status.",
		}, []string{"route", "method", "status"})),
		duration: registerOrReuse(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sealpost_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"})),
	}
}

// registerOrReuse registers c, or returns the identical collector already
// registered. Any other registration failure is a programming error (a
// name clash with different labels) and panics, as MustRegister does.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("httpapi: register metrics: %v", err))
}

// routeLabel is a ServeMux pattern without its method ("GET /v1/x" is
// "/v1/x"; the method has a label of its own), or unmatchedRoute.
func routeLabel(pattern string) string {
	if pattern == "" {
		return unmatchedRoute
	}
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		return strings.TrimLeft(pattern[i:], " \t")
	}
	return pattern
}

// methodLabel bounds the method label to the methods of RFC 9110 and
// PATCH (RFC 5789); anything else is "OTHER".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

package httpapi

import (
	"bufio"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var generatedID = regexp.MustCompile(`^[A-Z2-7]{26}$`)

func TestRequestID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	cases := []struct {
		name     string
		incoming string
		adopted  bool
	}{
		{"a valid id is echoed", "trace-01.ABC_z", true},
		{"64 characters are accepted", strings.Repeat("a", 64), true},
		{"65 characters are replaced", strings.Repeat("a", 65), false},
		{"a space is replaced", "abc def", false},
		{"a header injection attempt is replaced", "abc%0d%0aSet-Cookie:x", false},
		{"non-ASCII is replaced", "idé", false},
		{"none gets one", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var headers []string
			if tc.incoming != "" {
				headers = []string{"X-Request-Id", tc.incoming}
			}
			// A problem carries the id in its body as well.
			res := h.do(t, http.MethodGet, "/v1/audit-events", nil, headers...)
			got := res.header.Get("X-Request-Id")
			if tc.adopted && got != tc.incoming {
				t.Errorf("X-Request-Id = %q, want the incoming %q", got, tc.incoming)
			}
			if !tc.adopted && !generatedID.MatchString(got) {
				t.Errorf("X-Request-Id = %q, want a generated id", got)
			}
			if p := res.problem(t); p.RequestID != got || p.Instance != "urn:sealpost:request:"+got {
				t.Errorf("problem request_id %q instance %q, header %q", p.RequestID, p.Instance, got)
			}
		})
	}
}

func TestGeneratedRequestIDsDiffer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.do(t, http.MethodGet, "/healthz", nil).header.Get("X-Request-Id")
	b := h.do(t, http.MethodGet, "/healthz", nil).header.Get("X-Request-Id")
	if a == b {
		t.Errorf("two requests share the id %q", a)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	plain := newHarness(t, nil)
	overTLS := newHarness(t, func(o *Options) { o.TLS = true })
	cases := []struct {
		name    string
		h       *harness
		target  string
		hsts    bool
		noStore bool
		csp     bool
	}{
		{"API response, plain HTTP", plain, "/v1/audit-events", false, true, false},
		{"API problem for an unknown route", plain, "/v1/nothing-here", false, true, false},
		{"probe", plain, "/healthz", false, false, false},
		{"HTML page gets a CSP", plain, "/docs", false, false, true},
		{"script is not HTML", plain, "/docs/docs.js", false, false, false},
		{"API response over TLS", overTLS, "/v1/audit-events", true, true, false},
		{"HTML page over TLS", overTLS, "/docs", true, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := tc.h.do(t, http.MethodGet, tc.target, nil, "X-API-Key", keyAuditor)
			want := map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
			}
			for name, v := range want {
				if got := res.header.Get(name); got != v {
					t.Errorf("%s = %q, want %q", name, got, v)
				}
			}
			if got := res.header.Get("Strict-Transport-Security"); (got != "") != tc.hsts {
				t.Errorf("Strict-Transport-Security = %q, want present=%v", got, tc.hsts)
			}
			if got := res.header.Get("Cache-Control"); (got == "no-store") != tc.noStore {
				t.Errorf("Cache-Control = %q, want no-store=%v", got, tc.noStore)
			}
			csp := res.header.Get("Content-Security-Policy")
			if (csp != "") != tc.csp {
				t.Errorf("Content-Security-Policy = %q, want present=%v", csp, tc.csp)
			}
			if tc.csp && (!strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline")) {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
		})
	}
}

// An HTML body written without a Content-Type is sniffed before the
// header goes out, so it still gets the CSP.
func TestSniffedHTMLGetsCSP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.srv.Handle("GET /page", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<!doctype html><p>hello</p>"))
	}))
	res := h.do(t, http.MethodGet, "/page", nil)
	if res.header.Get("Content-Security-Policy") == "" {
		t.Errorf("no CSP on a sniffed HTML page; Content-Type %q", res.header.Get("Content-Type"))
	}
}

func TestUnmatchedRoutesAnswerProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	cases := []struct {
		name   string
		method string
		target string
		status int
		typ    ProblemType
		allow  string
	}{
		{"unknown /v1 route", http.MethodGet, "/v1/no-such-thing", 404, TypeNotFound, ""},
		{"the /v1 root", http.MethodGet, "/v1/", 404, TypeNotFound, ""},
		{"unknown route outside /v1", http.MethodGet, "/favicon.ico", 404, TypeNotFound, ""},
		{"wrong method", http.MethodDelete, "/v1/audit-events", 405, TypeMethodNotAllowed, "GET, HEAD"},
		{"wrong method on a probe", http.MethodPost, "/healthz", 405, TypeMethodNotAllowed, "GET, HEAD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := h.do(t, tc.method, tc.target, nil)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", res.status, tc.status, res.body)
			}
			if p := res.problem(t); p.Type != tc.typ {
				t.Errorf("type %q, want %q", p.Type, tc.typ)
			}
			if got := res.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.do(t, http.MethodGet, "/v1/audit-events", nil, "X-API-Key", keyAuditor)
	h.do(t, http.MethodGet, "/v1/audit-events", nil, "X-API-Key", keyAuditor)
	h.do(t, http.MethodGet, "/v1/audit-events", nil)
	h.do(t, http.MethodGet, "/v1/made-up/1", nil)
	h.do(t, http.MethodGet, "/v1/made-up/2", nil)
	h.do(t, "BREW", "/healthz", nil)

	counts := map[string]float64{}
	durations := map[string]uint64{}
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "sealpost_http_requests_total":
				counts[labels(m, "route", "method", "status")] = m.GetCounter().GetValue()
			case "sealpost_http_request_duration_seconds":
				durations[labels(m, "route", "method")] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	wantCounts := map[string]float64{
		"/v1/audit-events GET 200": 2,
		"/v1/audit-events GET 401": 1,
		"unmatched GET 404":        2, // made-up paths do not become labels
		"unmatched OTHER 405":      1, // nor do made-up methods
	}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("requests_total{%s} = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	if durations["/v1/audit-events GET"] != 3 {
		t.Errorf("duration samples for /v1/audit-events = %d, want 3", durations["/v1/audit-events GET"])
	}

	// And /metrics exposes them.
	res := h.do(t, http.MethodGet, "/metrics", nil)
	if !strings.Contains(string(res.body), `sealpost_http_requests_total{method="GET",route="/v1/audit-events",status="200"} 2`) {
		t.Errorf("/metrics lacks the request counter:\n%s", res.body)
	}
}

func labels(m *dto.Metric, names ...string) string {
	byName := map[string]string{}
	for _, l := range m.GetLabel() {
		byName[l.GetName()] = l.GetValue()
	}
	var out []string
	for _, n := range names {
		out = append(out, byName[n])
	}
	return strings.Join(out, " ")
}

// Two servers on one registry (a restart in process) share the metrics
// instead of failing to register.
func TestServersShareARegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := New(Options{Registerer: reg})
	b := New(Options{Registerer: reg})
	if a.metrics.requests != b.metrics.requests {
		t.Error("second server registered its own counter")
	}
}

// panicCanary is in a panic value: it may hold request data, so only the
// value's type may be logged.
const panicCanary = "PANIC-VALUE-CANARY"

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.srv.Handle("GET /test/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(fmt.Errorf("exploded near %s", panicCanary))
	}))
	h.srv.Handle("GET /test/half", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		panic(panicCanary)
	}))

	res := h.do(t, http.MethodGet, "/test/boom", nil)
	if res.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", res.status)
	}
	p := res.problem(t)
	if p.Type != TypeInternal || strings.Contains(string(res.body), panicCanary) || strings.Contains(string(res.body), "goroutine") {
		t.Errorf("problem %s", res.body)
	}

	// A panic after the response started aborts the connection: the
	// client must not take the partial body for a whole one.
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/test/half", nil)
	if r, err := h.ts.Client().Do(req); err == nil {
		_, err = bufio.NewReader(r.Body).ReadString(0)
		_ = r.Body.Close()
		if err == nil || err.Error() == "EOF" {
			t.Errorf("partial response after a panic ended cleanly (%v)", err)
		}
	}

	if res := h.do(t, http.MethodGet, "/healthz", nil); res.status != http.StatusOK {
		t.Errorf("after a panic /healthz answered %d", res.status)
	}

	var panics []map[string]any
	for _, rec := range h.logs.lines(t) {
		if rec["msg"] == "panic serving request" {
			panics = append(panics, rec)
		}
	}
	if len(panics) != 2 {
		t.Fatalf("logged %d panics, want 2", len(panics))
	}
	first := panics[0]
	if first["level"] != "ERROR" || first["panic_type"] != "*errors.errorString" {
		t.Errorf("panic record %v", first)
	}
	if stack, _ := first["stack"].(string); !strings.Contains(stack, "middleware_test.go") {
		t.Errorf("panic record lacks the stack: %v", first["stack"])
	}
	if first["route"] != "/test/boom" || first["request_id"] != res.header.Get("X-Request-Id") {
		t.Errorf("panic record route %v request_id %v", first["route"], first["request_id"])
	}
	if strings.Contains(h.logs.String(), panicCanary) {
		t.Error("the log holds the panic value")
	}
}

// canaries stand in for secrets and PHI a request may carry outside its
// path: none may reach the access log.
const (
	queryCanary  = "QUERY-CANARY-5521"
	headerCanary = "HEADER-CANARY-9313"
)

func TestAccessLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	res := h.do(t, http.MethodGet, "/v1/audit-events?action="+queryCanary, nil,
		"X-API-Key", keyAuditor, "Authorization", "Bearer "+headerCanary, "X-Request-Id", "log-test-1")
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	var rec map[string]any
	for _, r := range h.logs.lines(t) {
		if r["msg"] == "http request" && r["request_id"] == "log-test-1" {
			rec = r
		}
	}
	if rec == nil {
		t.Fatalf("no access log record in:\n%s", h.logs.String())
	}
	want := map[string]any{
		"level":     "INFO",
		"method":    "GET",
		"route":     "/v1/audit-events",
		"path":      "/v1/audit-events",
		"status":    float64(200),
		"bytes":     float64(len(res.body)),
		"remote_ip": "127.0.0.1",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, rec[k], rec[k], v)
		}
	}
	if d, ok := rec["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %v", rec["duration_ms"])
	}
	for _, canary := range []string{queryCanary, headerCanary, keyAuditor, "s3cret"} {
		if strings.Contains(h.logs.String(), canary) {
			t.Errorf("the log holds %q", canary)
		}
	}
}

func TestRemoteIP(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:5000": "127.0.0.1",
		"[::1]:5000":     "::1",
		"pipe":           "pipe",
	} {
		if got := remoteIP(in); got != want {
			t.Errorf("remoteIP(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRouteLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                     unmatchedRoute,
		"GET /v1/audit-events": "/v1/audit-events",
		"/docs/{file}":         "/docs/{file}",
		"GET example.com/x":    "example.com/x",
	} {
		if got := routeLabel(in); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		trusted []string
		xff     string
		want    string
	}{
		{"no trusted proxies: header ignored", nil, "203.0.113.9", "127.0.0.1"},
		{"trusted peer: rightmost untrusted hop", []string{"127.0.0.0/8"}, "198.51.100.1, 203.0.113.9, 127.0.0.2", "203.0.113.9"},
		{"untrusted peer: spoofed header ignored", []string{"10.0.0.0/8"}, "203.0.113.9", "127.0.0.1"},
		{"malformed hop: peer kept", []string{"127.0.0.0/8"}, "not-an-ip", "127.0.0.1"},
		{"only proxies in the chain: peer kept", []string{"127.0.0.0/8"}, "127.0.0.5", "127.0.0.1"},
	}
	for _, c := range cases {
		h := newHarness(t, func(o *Options) {
			for _, p := range c.trusted {
				o.TrustedProxies = append(o.TrustedProxies, netip.MustParsePrefix(p))
			}
		})
		h.do(t, http.MethodGet, "/healthz", nil, "X-Forwarded-For", c.xff)
		lines := h.logs.lines(t)
		var got any
		for _, l := range lines {
			if l["path"] == "/healthz" {
				got = l["remote_ip"]
			}
		}
		if got != c.want {
			t.Errorf("%s: remote_ip %v, want %s", c.name, got, c.want)
		}
	}
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/api/apitest"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
)

// Test credentials understood by testAuthenticate (X-API-Key values).
const (
	keyAuditor = "auditor:s3cret" // holds audit:read in account acct-1
	keySender  = "sender:s3cret"  // holds messages:send only
	keyBroken  = "broken:s3cret"  // the credential store fails
	keyWrong   = "auditor:wrong"  // refused
	testAcct   = "acct-1"
)

// testAuthenticate stands in for auth.Authenticator.
func testAuthenticate(r *http.Request) (auth.Principal, error) {
	switch r.Header.Get("X-API-Key") {
	case "":
		return auth.Principal{}, auth.ErrNoCredentials
	case keyAuditor:
		return auth.Principal{AccountID: testAcct, ActorKind: auth.ActorClient, ActorID: "auditor", Scopes: []string{auth.ScopeAuditRead}}, nil
	case keySender:
		return auth.Principal{AccountID: testAcct, ActorKind: auth.ActorClient, ActorID: "sender", Scopes: []string{auth.ScopeMessagesSend}}, nil
	case keyBroken:
		return auth.Principal{}, errors.New("credential store unreachable")
	default:
		return auth.Principal{}, fmt.Errorf("lookup: %w", auth.ErrBadCredentials)
	}
}

// Cursors the fake audit reader understands.
const (
	cursorBad  = "bad-cursor"
	cursorFail = "fail-cursor"
	cursorLast = "last-page"
	// secretInError is in the error the reader returns for cursorFail:
	// it must reach the log but never the response.
	secretInError = "SECRET-IN-ERROR"
)

// fakeAudit returns fixed events and remembers the last call.
type fakeAudit struct {
	mu      sync.Mutex
	account string
	query   audit.Query
	calls   int
}

func (f *fakeAudit) List(_ context.Context, accountID string, q audit.Query) (audit.Page, error) {
	f.mu.Lock()
	f.account, f.query = accountID, q
	f.calls++
	f.mu.Unlock()
	switch q.Cursor {
	case cursorBad:
		return audit.Page{}, fmt.Errorf("decode cursor: %w", audit.ErrBadCursor)
	case cursorFail:
		return audit.Page{}, errors.New("query failed: " + secretInError)
	case cursorLast:
		return audit.Page{}, nil
	}
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	return audit.Page{
		Events: []audit.Event{
			{
				ID: "evt-1", AccountID: accountID, Seq: 1, Time: t0,
				ActorKind: "user", ActorID: "usr-1", Action: "account.create", Target: accountID,
				Outcome: audit.OutcomeSuccess, SourceIP: "192.0.2.1", RequestID: "req-1",
				Details:  map[string]string{"name": "Clinic"},
				PrevHash: "", Hash: strings.Repeat("a", 64),
			},
			{
				ID: "evt-2", AccountID: accountID, Seq: 2, Time: t0.Add(time.Minute),
				ActorKind: "client", ActorID: "cli-1", Action: "client.create", Target: "cli-2",
				Outcome:  audit.OutcomeSuccess, // no Details: must still serialise as {}
				PrevHash: strings.Repeat("a", 64), Hash: strings.Repeat("b", 64),
			},
		},
		NextCursor: "next-page",
	}, nil
}

func (f *fakeAudit) last() (string, audit.Query, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.account, f.query, f.calls
}

// lockedBuffer is a log sink safe to read while the server writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log records written so far.
func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// harness is one Server behind a real loopback HTTP server.
type harness struct {
	srv   *Server
	ts    *httptest.Server
	logs  *lockedBuffer
	reg   *prometheus.Registry
	audit *fakeAudit
}

// newHarness starts a server with test authentication and the fake audit
// reader; adjust may change the options first.
func newHarness(t *testing.T, adjust func(*Options)) *harness {
	t.Helper()
	h := &harness{logs: &lockedBuffer{}, reg: prometheus.NewRegistry(), audit: &fakeAudit{}}
	opts := Options{
		Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:   h.reg,
		Gatherer:     h.reg,
		Authenticate: testAuthenticate,
		Audit:        h.audit,
	}
	if adjust != nil {
		adjust(&opts)
	}
	h.srv = New(opts)
	h.ts = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.ts.Close)
	return h
}

// response is a finished exchange.
type response struct {
	req    *http.Request
	status int
	header http.Header
	body   []byte
}

// do sends a request; headers alternate names and values.
func (h *harness) do(t *testing.T, method, target string, body io.Reader, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return response{req: req, status: res.StatusCode, header: res.Header, body: b}
}

// problem decodes a problem response and checks what every problem
// guarantees: the media type, the status, a stable type URI, the request
// id of the header, and conformance to the Problem schema.
func (r response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, r.body)
	}
	if p.Status != r.status {
		t.Errorf("problem status %d, response status %d", p.Status, r.status)
	}
	if !strings.HasPrefix(string(p.Type), "urn:sealpost:problem:") {
		t.Errorf("problem type %q is not a sealpost URN", p.Type)
	}
	if id := r.header.Get("X-Request-Id"); p.RequestID == "" || p.RequestID != id {
		t.Errorf("problem request_id %q, X-Request-Id %q", p.RequestID, id)
	}
	var generic any
	_ = json.Unmarshal(r.body, &generic)
	if err := contract(t).Schema("Problem").VisitJSON(generic, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("problem does not match the Problem schema: %v", err)
	}
	return p
}

// spec is the shared contract checker (api/apitest).
type spec = apitest.Contract

func contract(t *testing.T) *spec {
	t.Helper()
	s, err := apitest.Load()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	return s
}

// validate checks a real response against the operation the contract
// declares for its request: the status must be documented, and headers
// and body must match.
func validateContract(t *testing.T, s *spec, r response) {
	t.Helper()
	if err := s.Check(r.req, r.status, r.header, r.body); err != nil {
		t.Errorf("%s %s -> %d does not match the contract: %v\nbody: %s", r.req.Method, r.req.URL, r.status, err, r.body)
	}
}

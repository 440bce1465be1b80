package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlpsettings"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/session"
	"github.com/sealpost/sealpost/internal/templates"
	"github.com/sealpost/sealpost/internal/tracking"
	"github.com/sealpost/sealpost/internal/webhooks"
)

func TestContractLoadsAndValidates(t *testing.T) {
	t.Parallel()
	s := contract(t)
	if s.Doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", s.Doc.OpenAPI)
	}
	// The JSON form served at /openapi.json is the same contract.
	raw, err := api.JSON()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("JSON form does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("JSON form does not validate: %v", err)
	}
	if len(doc.Paths.Map()) != len(s.Doc.Paths.Map()) {
		t.Errorf("JSON form has %d paths, YAML %d", len(doc.Paths.Map()), len(s.Doc.Paths.Map()))
	}
	for _, name := range []string{"oauth2", "apiKey", "basic", "hmac"} {
		if s.Doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %q is not declared", name)
		}
	}
}

// Later RBAC tests are generated from x-sealpost-scope, so every /v1
// operation must declare a scope the platform knows, and its OAuth 2.0
// requirement must ask for that scope.
func TestEveryV1OperationDeclaresItsScope(t *testing.T) {
	t.Parallel()
	s := contract(t)
	known := append(auth.AllScopes(), auth.ScopeAuthenticated)
	for path, item := range s.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			scope, _ := op.Extensions["x-sealpost-scope"].(string)
			if !strings.HasPrefix(path, "/v1/") {
				if op.Security == nil || len(*op.Security) != 0 {
					t.Errorf("%s %s is outside /v1 and must declare security: []", method, path)
				}
				continue
			}
			if !slices.Contains(known, scope) {
				t.Errorf("%s %s: x-sealpost-scope %q is not a known scope", method, path, scope)
				continue
			}
			if scope == auth.ScopeAuthenticated {
				continue // any principal; no OAuth scope to ask for
			}
			var oauth []string
			if op.Security != nil {
				for _, req := range *op.Security {
					if scopes, ok := req["oauth2"]; ok {
						oauth = scopes
					}
				}
			}
			if !slices.Contains(oauth, scope) {
				t.Errorf("%s %s: oauth2 requirement %v lacks its scope %q", method, path, oauth, scope)
			}
		}
	}
}

// Every implemented operation's real responses, success and failure,
// must match the contract.
func TestResponsesMatchContract(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) {
		o.ReadyChecks = map[string]func(context.Context) error{"store": func(context.Context) error { return nil }}
	})
	down := newHarness(t, func(o *Options) {
		o.ReadyChecks = map[string]func(context.Context) error{
			"store": func(context.Context) error { return nil },
			"queue": func(context.Context) error { return errors.New("not started") },
		}
	})
	key := "X-API-Key"
	cases := []struct {
		name    string
		h       *harness
		target  string
		headers []string
		status  int
	}{
		{"liveness", h, "/healthz", nil, http.StatusOK},
		{"ready", h, "/readyz", nil, http.StatusOK},
		{"not ready", down, "/readyz", nil, http.StatusServiceUnavailable},
		{"a page with a next cursor", h, "/v1/audit-events", []string{key, keyAuditor}, http.StatusOK},
		{"the last page", h, "/v1/audit-events?cursor=" + cursorLast, []string{key, keyAuditor}, http.StatusOK},
		{"every filter", h, "/v1/audit-events?since=2026-01-01T00:00:00Z&until=2026-12-31T00:00:00%2B01:00&action=client.create&actor_id=usr-1&limit=500", []string{key, keyAuditor}, http.StatusOK},
		{"limit out of range", h, "/v1/audit-events?limit=501", []string{key, keyAuditor}, http.StatusBadRequest},
		{"since not a date-time", h, "/v1/audit-events?since=yesterday", []string{key, keyAuditor}, http.StatusBadRequest},
		{"unknown parameter", h, "/v1/audit-events?account_id=acct-2", []string{key, keyAuditor}, http.StatusBadRequest},
		{"bad cursor", h, "/v1/audit-events?cursor=" + cursorBad, []string{key, keyAuditor}, http.StatusBadRequest},
		{"credential in the URL", h, "/v1/audit-events?access_token=abc", []string{key, keyAuditor}, http.StatusBadRequest},
		{"no credential", h, "/v1/audit-events", nil, http.StatusUnauthorized},
		{"wrong credential", h, "/v1/audit-events", []string{key, keyWrong}, http.StatusUnauthorized},
		{"scope missing", h, "/v1/audit-events", []string{key, keySender}, http.StatusForbidden},
		{"reader fails", h, "/v1/audit-events?cursor=" + cursorFail, []string{key, keyAuditor}, http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := tc.h.do(t, http.MethodGet, tc.target, nil, tc.headers...)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", res.status, tc.status, res.body)
			}
			validateContract(t, contract(t), res)
			if res.status >= 400 && !strings.HasPrefix(tc.target, "/readyz") {
				res.problem(t)
			}
		})
	}
}

// The response check must fail responses that break the contract, or the
// test above proves nothing.
func TestContractCheckRefusesNonConformingResponses(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/v1/audit-events", nil)
	good := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"abc"}}
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"undocumented status", http.StatusTeapot, good, `{}`},
		{"missing required field", http.StatusOK, good, `{"data":[]}`},
		{"event of the wrong shape", http.StatusOK, good, `{"data":[{"id":1}],"next_cursor":null}`},
		{"missing X-Request-Id", http.StatusOK, http.Header{"Content-Type": {"application/json"}}, `{"data":[],"next_cursor":null}`},
		{"problem without request_id", http.StatusForbidden,
			http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"abc"}},
			`{"type":"urn:sealpost:problem:forbidden","title":"Forbidden","status":403}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := contract(t).Check(req, tc.status, tc.header, []byte(tc.body))
			if err == nil {
				t.Error("accepted")
			}
		})
	}
	if err := contract(t).Check(req, http.StatusOK, good, []byte(`{"data":[],"next_cursor":null}`)); err != nil {
		t.Errorf("conforming response refused: %v", err)
	}
}

// The contract must describe what the handler accepts: a date-time with
// fractional seconds and an offset is valid in both.
func TestContractDateTimeAgreesWithHandler(t *testing.T) {
	t.Parallel()
	q, p := parseAuditQuery("since=2026-01-02T03:04:05.123456789-05:00")
	if p != nil {
		t.Fatalf("valid date-time refused: %v", p)
	}
	want := time.Date(2026, 1, 2, 8, 4, 5, 123456789, time.UTC)
	if !q.Since.Equal(want) {
		t.Errorf("since = %v, want %v", q.Since, want)
	}
}

// Deny by default, checked both ways: every scoped route the server
// registers is an operation of the contract with the same scope, and
// every /v1 operation of the contract is served. A route added without
// its contract entry (or with another scope) fails here.
func TestScopedRoutesAreExactlyTheContractsV1Operations(t *testing.T) {
	t.Parallel()
	// Typed nil services: their routes are registered, never called here.
	srv := New(Options{Audit: &fakeAudit{}, Clients: unusedClientAdmin{}, Sessions: unusedSessionAdmin{}, Policies: unusedPolicyAdmin{},
		Users: unusedUserAdmin{}, Messages: (*messages.Service)(nil), Domains: (*domains.Service)(nil),
		TrackingSettings: (*tracking.Service)(nil), Webhooks: (*webhooks.Service)(nil), Templates: (*templates.Service)(nil),
		Retention: (*retention.Service)(nil), Portal: (*portal.Service)(nil), Keys: (*keys.Service)(nil), SecureLine: (*secureline.Service)(nil),
		DLP: (*policy.Engine)(nil), Quarantine: (*policy.QuarantineStore)(nil),
		DLPSettings: (*dlpsettings.Service)(nil)})
	routes := srv.ScopedRoutes()
	inContract := map[string]string{}
	for path, item := range contract(t).Doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			scope, _ := op.Extensions["x-sealpost-scope"].(string)
			inContract[method+" "+path] = scope
		}
	}
	for pattern, scope := range routes {
		if want, ok := inContract[pattern]; !ok {
			t.Errorf("route %s is not in api/openapi.yaml", pattern)
		} else if want != scope {
			t.Errorf("route %s requires %q, the contract says %q", pattern, scope, want)
		}
	}
	for op := range inContract {
		if _, ok := routes[op]; !ok {
			t.Errorf("contract operation %s is not served", op)
		}
	}
}

func TestV1RoutesCannotBeRegisteredWithoutAScope(t *testing.T) {
	t.Parallel()
	srv := New(Options{})
	defer func() {
		if recover() == nil {
			t.Fatal("Handle accepted a /v1 route")
		}
	}()
	srv.Handle("GET /v1/anything", http.NotFoundHandler())
}

// unusedClientAdmin only lets New register the client routes; these
// tests never call it (the real service is tested end to end in cli).
type unusedClientAdmin struct{}

func (unusedClientAdmin) CreateClient(context.Context, account.Actor, account.ClientSpec) (account.NewClient, error) {
	return account.NewClient{}, errors.New("unused")
}
func (unusedClientAdmin) ListClients(context.Context, account.Actor) ([]account.Client, error) {
	return nil, errors.New("unused")
}
func (unusedClientAdmin) RotateClient(context.Context, account.Actor, string) (account.NewClient, error) {
	return account.NewClient{}, errors.New("unused")
}
func (unusedClientAdmin) RevokeClient(context.Context, account.Actor, string) error {
	return errors.New("unused")
}

type unusedSessionAdmin struct{}

func (unusedSessionAdmin) Open(context.Context, account.Actor) (session.Opened, error) {
	return session.Opened{}, errors.New("unused")
}
func (unusedSessionAdmin) Revoke(context.Context, account.Actor, string) error {
	return errors.New("unused")
}
func (unusedSessionAdmin) RevokeClientSessions(context.Context, account.Actor, string) (int64, error) {
	return 0, errors.New("unused")
}

type unusedPolicyAdmin struct{}

func (unusedPolicyAdmin) Policy(context.Context, account.Actor) (auth.Policy, error) {
	return auth.Policy{}, errors.New("unused")
}
func (unusedPolicyAdmin) UpdatePolicy(context.Context, account.Actor, string, auth.Policy) error {
	return errors.New("unused")
}

type unusedUserAdmin struct{}

func (unusedUserAdmin) CreateUser(context.Context, account.Actor, string, string) (account.NewUser, error) {
	return account.NewUser{}, errors.New("unused")
}
func (unusedUserAdmin) ListUsers(context.Context, account.Actor) ([]account.User, error) {
	return nil, errors.New("unused")
}
func (unusedUserAdmin) UpdateUser(context.Context, account.Actor, string, account.UserChange) (account.User, error) {
	return account.User{}, errors.New("unused")
}

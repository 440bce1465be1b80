package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/auth"
)

func TestScopedRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	noAuth := newHarness(t, func(o *Options) { o.Authenticate = nil })
	cases := []struct {
		name   string
		h      *harness
		target string
		key    string
		status int
		typ    ProblemType
	}{
		{"no credential is 401", h, "/v1/audit-events", "", 401, TypeUnauthenticated},
		{"a refused credential is 401", h, "/v1/audit-events", keyWrong, 401, TypeUnauthenticated},
		{"without an authenticator nobody gets in", noAuth, "/v1/audit-events", keyAuditor, 401, TypeUnauthenticated},
		{"a principal without the scope is 403", h, "/v1/audit-events", keySender, 403, TypeForbidden},
		{"a failing credential store is 500, not 401", h, "/v1/audit-events", keyBroken, 500, TypeInternal},
		{"access_token in the URL is 400 even with a good key", h, "/v1/audit-events?access_token=abc", keyAuditor, 400, TypeBadRequest},
		{"api_key in the URL is 400", h, "/v1/audit-events?api_key=" + strings.ReplaceAll(keyAuditor, ":", "%3A"), "", 400, TypeBadRequest},
		{"the check ignores case", h, "/healthz?API_KEY=x", "", 400, TypeBadRequest},
		{"the check covers every route", h, "/healthz?access_token=", "", 400, TypeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var headers []string
			if tc.key != "" {
				headers = []string{"X-API-Key", tc.key}
			}
			res := tc.h.do(t, http.MethodGet, tc.target, nil, headers...)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", res.status, tc.status, res.body)
			}
			if p := res.problem(t); p.Type != tc.typ {
				t.Errorf("type %q, want %q", p.Type, tc.typ)
			}
			challenge := res.header.Get("WWW-Authenticate")
			if tc.status == 401 && challenge != `Basic realm="sealpost", Bearer` {
				t.Errorf("WWW-Authenticate = %q", challenge)
			}
			if tc.status != 401 && challenge != "" {
				t.Errorf("WWW-Authenticate %q on a %d", challenge, tc.status)
			}
			for _, secret := range []string{"s3cret", "credential store unreachable"} {
				if strings.Contains(string(res.body), secret) {
					t.Errorf("response holds %q: %s", secret, res.body)
				}
			}
		})
	}
	if _, _, calls := h.audit.last(); calls != 0 {
		t.Errorf("the audit reader was called %d times by refused requests", calls)
	}
}

// A handler behind HandleScoped finds the principal in its context.
func TestHandleScopedPassesThePrincipal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.srv.HandleScoped("GET /v1/test-principal", "messages:send", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			http.Error(w, "no principal", 500)
			return
		}
		_, _ = w.Write([]byte(p.AccountID + "/" + p.ActorID))
	}))
	res := h.do(t, http.MethodGet, "/v1/test-principal", nil, "X-API-Key", keySender)
	if res.status != 200 || string(res.body) != testAcct+"/sender" {
		t.Errorf("got %d %q", res.status, res.body)
	}
	if res := h.do(t, http.MethodGet, "/v1/test-principal", nil, "X-API-Key", keyAuditor); res.status != 403 {
		t.Errorf("auditor got %d, want 403", res.status)
	}
}

package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
)

func TestListAuditEventsReadsTheCallersAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	res := h.do(t, http.MethodGet, "/v1/audit-events?since=2026-11-01T00:00:00Z&until=2026-11-30T00:00:00Z&action=client.create&actor_id=usr-1&cursor=c1&limit=25",
		nil, "X-API-Key", keyAuditor)
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	account, q, _ := h.audit.last()
	if account != testAcct {
		t.Errorf("listed account %q, want the principal's %q", account, testAcct)
	}
	want := audit.Query{
		Since:   time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Until:   time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		Action:  "client.create",
		ActorID: "usr-1",
		Cursor:  "c1",
		Limit:   25,
	}
	if !q.Since.Equal(want.Since) || !q.Until.Equal(want.Until) || q.Action != want.Action ||
		q.ActorID != want.ActorID || q.Cursor != want.Cursor || q.Limit != want.Limit {
		t.Errorf("query %+v, want %+v", q, want)
	}

	var body struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Data) != 2 || body.NextCursor == nil || *body.NextCursor != "next-page" {
		t.Fatalf("body %s", res.body)
	}
	if d, ok := body.Data[1]["details"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("an event without details serialised as %v, want {}", body.Data[1]["details"])
	}
}

func TestListAuditEventsLastPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	res := h.do(t, http.MethodGet, "/v1/audit-events?cursor="+cursorLast, nil, "X-API-Key", keyAuditor)
	if got := strings.TrimSpace(string(res.body)); got != `{"data":[],"next_cursor":null}` {
		t.Errorf("last page %s", got)
	}
}

func TestListAuditEventsDefaultLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.do(t, http.MethodGet, "/v1/audit-events", nil, "X-API-Key", keyAuditor)
	if _, q, _ := h.audit.last(); q.Limit != auditDefaultLimit {
		t.Errorf("limit %d, want %d", q.Limit, auditDefaultLimit)
	}
}

func TestListAuditEventsRefusesBadParameters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	long := strings.Repeat("a", maxFilterLen+1)
	cases := []struct {
		name  string
		query string
		field string
	}{
		{"limit zero", "limit=0", "limit"},
		{"limit too large", "limit=501", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"since without an offset", "since=2026-01-01T00:00:00", "since"},
		{"until before since", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		{"until equal to since", "since=2026-02-01T00:00:00Z&until=2026-02-01T00:00:00Z", "until"},
		{"empty action", "action=", "action"},
		{"action too long", "action=" + long, "action"},
		{"actor_id not UTF-8", "actor_id=%ff", "actor_id"},
		{"cursor too long", "cursor=" + strings.Repeat("c", maxCursorLen+1), "cursor"},
		{"repeated parameter", "limit=1&limit=2", "limit"},
		{"account from the query is not a filter", "account_id=acct-2", "account_id"},
		{"malformed query string", "limit=%zz", ""},
		{"cursor the reader refuses", "cursor=" + cursorBad, "cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := h.do(t, http.MethodGet, "/v1/audit-events?"+tc.query, nil, "X-API-Key", keyAuditor)
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", res.status, res.body)
			}
			p := res.problem(t)
			if p.Type != TypeBadRequest {
				t.Errorf("type %q", p.Type)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors %+v, want field %q", p.Errors, tc.field)
			}
			if tc.field == "action" || tc.field == "cursor" {
				if v, _ := url.ParseQuery(tc.query); len(v.Get(tc.field)) > 8 && strings.Contains(string(res.body), v.Get(tc.field)) {
					t.Errorf("problem echoes the value: %s", res.body)
				}
			}
		})
	}
}

func TestListAuditEventsHidesReaderErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	res := h.do(t, http.MethodGet, "/v1/audit-events?cursor="+cursorFail, nil, "X-API-Key", keyAuditor)
	if res.status != http.StatusInternalServerError {
		t.Fatalf("status %d", res.status)
	}
	if p := res.problem(t); p.Type != TypeInternal || strings.Contains(string(res.body), secretInError) {
		t.Errorf("problem %s", res.body)
	}
	// The operator finds the cause by request id.
	found := false
	for _, rec := range h.logs.lines(t) {
		if rec["msg"] == "request failed" && rec["request_id"] == res.header.Get("X-Request-Id") &&
			strings.Contains(rec["error"].(string), secretInError) {
			found = true
		}
	}
	if !found {
		t.Errorf("the cause is not logged with the request id:\n%s", h.logs.String())
	}
}

func TestAuditRouteNeedsAReader(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.Audit = nil })
	if res := h.do(t, http.MethodGet, "/v1/audit-events", nil, "X-API-Key", keyAuditor); res.status != http.StatusNotFound {
		t.Errorf("status %d, want 404", res.status)
	}
}

package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// Whatever the query string, parsing ends in a bounded query or a 400.
func FuzzParseAuditQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=1", "limit=500&cursor=abc", "since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
		"action=%ff", "limit=%zz", "a=b&a=c", "actor_id=" + strings.Repeat("x", 300),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, p := parseAuditQuery(raw)
		if p != nil {
			if p.Status != http.StatusBadRequest {
				t.Fatalf("status %d", p.Status)
			}
			return
		}
		if q.Limit < 1 || q.Limit > auditMaxLimit {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		for _, s := range []string{q.Action, q.ActorID, q.Cursor} {
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxCursorLen {
				t.Fatalf("value %q accepted", s)
			}
		}
		if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
			t.Fatal("until not after since accepted")
		}
	})
}

// Whatever the body, decoding succeeds or yields a client problem; it
// never fails as a server fault.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"name":"a","count":1}`, `{"name":`, `{}{}`, `[]`, `{"x":1}`, `{"count":"1"}`, ``, `null`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var v struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		err := decodeJSON(r, &v)
		if err == nil {
			return
		}
		p := problemFor(err)
		if p.Status < 400 || p.Status >= 500 {
			t.Fatalf("body %q gave status %d (%v)", body, p.Status, err)
		}
	})
}

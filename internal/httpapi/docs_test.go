package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/api"
)

func TestContractAndDocsAreServed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	specJSON, err := api.JSON()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		target      string
		contentType string
		body        []byte // exact body, when set
		contains    string
	}{
		{"/openapi.yaml", "application/yaml", api.Spec, ""},
		{"/openapi.json", "application/json", specJSON, ""},
		{"/docs", "text/html; charset=utf-8", nil, `src="/docs/docs.js"`},
		{"/docs/docs.js", "text/javascript; charset=utf-8", nil, "/openapi.json"},
		{"/docs/docs.css", "text/css; charset=utf-8", nil, "font-family"},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			t.Parallel()
			res := h.do(t, http.MethodGet, tc.target, nil)
			if res.status != http.StatusOK {
				t.Fatalf("status %d", res.status)
			}
			if got := res.header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if tc.body != nil && !bytes.Equal(res.body, tc.body) {
				t.Error("body differs from the embedded file")
			}
			if !strings.Contains(string(res.body), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			// A second fetch with the ETag is answered 304.
			etag := res.header.Get("ETag")
			again := h.do(t, http.MethodGet, tc.target, nil, "If-None-Match", etag)
			if etag == "" || again.status != http.StatusNotModified {
				t.Errorf("revalidation with ETag %q answered %d", etag, again.status)
			}
		})
	}
	if res := h.do(t, http.MethodGet, "/docs/nothing.js", nil); res.status != http.StatusNotFound {
		t.Errorf("missing docs file answered %d", res.status)
	} else {
		res.problem(t)
	}
}

var (
	scriptTag   = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	styleAttr   = regexp.MustCompile(`(?i)\sstyle\s*=`)
	inlineEvent = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	remoteURL   = regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`)
)

// The page must work under its CSP (no inline script, style or event
// handlers) and offline (nothing fetched from elsewhere).
func TestDocsPageFitsItsCSP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	page := string(h.do(t, http.MethodGet, "/docs", nil).body)
	for _, m := range scriptTag.FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script: %s", m[0])
		}
	}
	if strings.Contains(strings.ToLower(page), "<style") || styleAttr.MatchString(page) {
		t.Error("inline style")
	}
	if inlineEvent.MatchString(page) {
		t.Error("inline event handler")
	}
	if remoteURL.MatchString(page) {
		t.Error("the page loads something from another origin")
	}
	js := string(h.do(t, http.MethodGet, "/docs/docs.js", nil).body)
	for _, banned := range []string{"innerHTML", "outerHTML", "eval(", "new Function", "localStorage", "sessionStorage", "setAttribute('style'"} {
		if strings.Contains(js, banned) {
			t.Errorf("docs.js uses %s", banned)
		}
	}
}

// The docs page reads the contract's operations by tag; make sure the
// JSON form has what it relies on.
func TestContractJSONHasWhatTheDocsRead(t *testing.T) {
	t.Parallel()
	raw, err := api.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tags  []struct{ Name string } `json:"tags"`
		Paths map[string]map[string]struct {
			Tags        []string `json:"tags"`
			OperationID string   `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	tags := map[string]bool{}
	for _, tg := range doc.Tags {
		tags[tg.Name] = true
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if len(op.Tags) == 0 || !tags[op.Tags[0]] || op.OperationID == "" {
				t.Errorf("%s %s: tags %v (declared %v), operationId %q", method, path, op.Tags, tags, op.OperationID)
			}
		}
	}
}

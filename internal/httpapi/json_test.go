package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// bodyCanary stands for PHI in a request body: no problem may repeat it.
const bodyCanary = "PHI-CANARY-7731"

// echoRoute mounts a JSON-accepting route for the decoding tests; the
// contract has no such operation yet.
func echoRoute(s *Server) {
	s.Handle("POST /test/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		if err := decodeJSON(r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, in)
	}))
}

// unsized hides the length of a body, so the client streams it chunked
// and only the read limit can stop it.
type unsized struct{ io.Reader }

func TestJSONBodyProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.MaxBodyBytes = 64 })
	echoRoute(h.srv)
	big := `{"name":"` + strings.Repeat("x", 100) + `"}`
	cases := []struct {
		name        string
		contentType string
		body        io.Reader
		status      int
		typ         ProblemType
		field       string // expected errors[0].field, if any
	}{
		{"malformed JSON gives the offset", "application/json", strings.NewReader(`{"name":"` + bodyCanary + `" x}`), 400, TypeMalformedJSON, ""},
		{"truncated JSON", "application/json", strings.NewReader(`{"name":"` + bodyCanary), 400, TypeMalformedJSON, ""},
		{"empty body", "application/json", strings.NewReader(""), 400, TypeMalformedJSON, ""},
		{"unknown field is named", "application/json", strings.NewReader(`{"nmae":"` + bodyCanary + `"}`), 400, TypeUnknownField, "nmae"},
		{"data after the value", "application/json", strings.NewReader(`{"name":"a"} {"name":"` + bodyCanary + `"}`), 400, TypeMalformedJSON, ""},
		{"wrong JSON type names the field", "application/json", strings.NewReader(`{"count":"` + bodyCanary + `"}`), 422, TypeValidation, "count"},
		{"number where a string belongs", "application/json", strings.NewReader(`{"name":7731}`), 422, TypeValidation, "name"},
		{"declared length over the limit", "application/json", strings.NewReader(big), 413, TypePayloadTooLarge, ""},
		{"streamed body over the limit", "application/json", unsized{strings.NewReader(big)}, 413, TypePayloadTooLarge, ""},
		{"text/plain", "text/plain", strings.NewReader(`{"name":"a"}`), 415, TypeUnsupportedMediaType, ""},
		{"no content type", "", strings.NewReader(`{"name":"a"}`), 415, TypeUnsupportedMediaType, ""},
		{"JSON in another charset", "application/json; charset=iso-8859-1", strings.NewReader(`{"name":"a"}`), 415, TypeUnsupportedMediaType, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var headers []string
			if tc.contentType != "" {
				headers = []string{"Content-Type", tc.contentType}
			}
			res := h.do(t, http.MethodPost, "/test/echo", tc.body, headers...)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", res.status, tc.status, res.body)
			}
			p := res.problem(t)
			if p.Type != tc.typ {
				t.Errorf("type %q, want %q", p.Type, tc.typ)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors %+v, want field %q first", p.Errors, tc.field)
			}
			if strings.Contains(string(res.body), bodyCanary) || strings.Contains(string(res.body), "7731") {
				t.Errorf("problem echoes the request body: %s", res.body)
			}
		})
	}
}

func TestJSONBodyAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	echoRoute(h.srv)
	res := h.do(t, http.MethodPost, "/test/echo", strings.NewReader(`{"name":"a","count":2}`+"\n"),
		"Content-Type", "application/json; charset=UTF-8")
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"name":"a","count":2}` {
		t.Errorf("got %d %s", res.status, res.body)
	}
}

func TestMalformedJSONReportsByteOffset(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a": x}`))
	r.Header.Set("Content-Type", "application/json")
	var v map[string]any
	p, ok := decodeJSON(r, &v).(*Problem)
	if !ok || p.Type != TypeMalformedJSON || p.Detail != "malformed JSON at byte offset 7" {
		t.Errorf("got %#v", p)
	}
}

func TestUnknownFieldNameIsClipped(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200)
	r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(`{"`+long+`":1}`))
	r.Header.Set("Content-Type", "application/json")
	var v struct{}
	p, ok := decodeJSON(r, &v).(*Problem)
	if !ok || p.Type != TypeUnknownField {
		t.Fatalf("got %v", p)
	}
	if n := len([]rune(p.Errors[0].Field)); n > maxEchoedFieldName+1 {
		t.Errorf("field name of %d runes echoed", n)
	}
}

func TestWrongTypeFieldPathsLookTheSameOnEveryGoRelease(t *testing.T) {
	cases := []struct{ name, raw, want string }{
		{"a top-level field", "subject", "subject"},
		{"a nested field without indexes (older releases)", "rules.conditions.min_score", "rules.conditions.min_score"},
		{"array indexes become brackets", "rules.0.conditions.min_score", "rules[0].conditions.min_score"},
		{"a map key is not echoed", "recipient_data.ada@patient.example", "recipient_data"},
		{"a map key that looks like a name is kept", "metadata.visit", "metadata.visit"},
		{"no path", "", "(body)"},
		{"an index at the top", "3.subject", "(body)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fieldPath(c.raw); got != c.want {
				t.Errorf("fieldPath(%q) = %q, want %q", c.raw, got, c.want)
			}
		})
	}
}

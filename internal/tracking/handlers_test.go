package tracking

import (
	"bytes"
	"context"
	"image/gif"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// serve mounts the routes on a real HTTP server (the middleware of
// package httpapi is exercised by internal/cli/tracking_test.go).
func serve(t *testing.T, s *Service) string {
	mux := http.NewServeMux()
	for pattern, h := range s.Routes() {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, url, contentType string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPublicEndpoints(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		base := serve(t, w.tracking)
		acct := w.actor.Principal.AccountID
		m := w.send(w.actor, newsletter, "pat@patient.example", "sam@patient.example", "kim@patient.example")

		t.Run("the pixel is a GIF for good and forged tokens alike; only the good one records", func(t *testing.T) {
			for _, tok := range []string{tokens(m.html[0], "t/o")[0], "AAAA", tokens(m.html[1], "t/c")[0]} {
				resp, body := do(t, "GET", base+"/t/o/"+tok, "", nil)
				if _, err := gif.Decode(strings.NewReader(body)); resp.StatusCode != 200 || err != nil ||
					resp.Header.Get("Content-Type") != "image/gif" || !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
					t.Errorf("pixel %s: %d %q %v", tok, resp.StatusCode, resp.Header, err)
				}
			}
			if got := w.events(acct, m.id, EventOpened); len(got) != 1 || got[0].rcpt != 0 || got[0].details != `{"user_agent":"browser"}` {
				t.Errorf("opened events: %+v", got)
			}
		})

		t.Run("a click redirects to its target; forged and HEAD requests record nothing", func(t *testing.T) {
			tok := tokens(m.html[1], "t/c")[1]
			resp, _ := do(t, "GET", base+"/t/c/"+tok, "", nil)
			if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://clinic.example/hours" {
				t.Errorf("click: %d %q", resp.StatusCode, resp.Header)
			}
			if resp, _ := do(t, "HEAD", base+"/t/c/"+tok, "", nil); resp.StatusCode != 302 {
				t.Errorf("HEAD: %d", resp.StatusCode)
			}
			for _, bad := range []string{"AAAA", tokens(m.html[1], "t/o")[0], tok[:len(tok)-2]} {
				if resp, body := do(t, "GET", base+"/t/c/"+bad, "", nil); resp.StatusCode != 404 || resp.Header.Get("Location") != "" ||
					!strings.Contains(body, "not valid") {
					t.Errorf("forged click: %d %q", resp.StatusCode, resp.Header)
				}
			}
			if got := w.events(acct, m.id, EventClicked); len(got) != 1 || got[0].rcpt != 1 || got[0].details != `{"link_index":1,"user_agent":"browser"}` {
				t.Errorf("clicked events: %+v", got)
			}
		})

		t.Run("the unsubscribe page asks with a form and changes nothing", func(t *testing.T) {
			resp, body := do(t, "GET", base+"/u/"+tokens(m.html[0], "u")[0], "", nil)
			for _, want := range []string{`<form method="post">`, `name="List-Unsubscribe" value="One-Click"`, `<button type="submit">Unsubscribe</button>`,
				`<html lang="en">`, "p***@patient.example", "news@clinic.example"} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s:\n%s", want, body)
				}
			}
			if resp.StatusCode != 200 || resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("page: %d %q", resp.StatusCode, resp.Header)
			}
			if list, _ := w.msgs.Suppressions(context.Background(), acct); len(list) != 0 {
				t.Errorf("GET unsubscribed: %+v", list)
			}
		})

		t.Run("RFC 8058 one-click POST unsubscribes without cookies or confirmation", func(t *testing.T) {
			url := base + "/u/" + tokens(m.html[0], "u")[0]
			for range 2 {
				resp, body := do(t, "POST", url, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
				if resp.StatusCode != 200 || !strings.Contains(body, "will no longer receive") {
					t.Errorf("one-click: %d %s", resp.StatusCode, body)
				}
			}
			// Multipart bodies are allowed too (RFC 8058 §3.2), and the
			// page's own button is told apart.
			var mp bytes.Buffer
			mw := multipart.NewWriter(&mp)
			_ = mw.WriteField("List-Unsubscribe", "One-Click")
			_ = mw.Close()
			if resp, _ := do(t, "POST", base+"/u/"+tokens(m.html[1], "u")[0], mw.FormDataContentType(), &mp); resp.StatusCode != 200 {
				t.Errorf("multipart one-click: %d", resp.StatusCode)
			}
			if resp, _ := do(t, "POST", base+"/u/"+tokens(m.html[2], "u")[0], "application/x-www-form-urlencoded",
				strings.NewReader("List-Unsubscribe=One-Click&source=page")); resp.StatusCode != 200 {
				t.Errorf("page button: %d", resp.StatusCode)
			}
			got := w.events(acct, m.id, EventUnsubscribed)
			if len(got) != 3 || got[0].details != `{"method":"one-click"}` || got[2].details != `{"method":"page"}` {
				t.Errorf("unsubscribed events: %+v", got)
			}
			if list, _ := w.msgs.Suppressions(context.Background(), acct); len(list) != 3 {
				t.Errorf("suppressions: %+v", list)
			}
			if resp, body := do(t, "GET", url, "", nil); resp.StatusCode != 200 || strings.Contains(body, "<form") {
				t.Errorf("page after unsubscribing: %d %s", resp.StatusCode, body)
			}
			if resp, _ := do(t, "POST", base+"/u/AAAA", "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click")); resp.StatusCode != 404 {
				t.Errorf("forged one-click: %d", resp.StatusCode)
			}
		})
	})
}

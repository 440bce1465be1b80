package portal

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

type page struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(b)}
}

func post(t *testing.T, c *http.Client, u string, form url.Values, header map[string]string) page {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(b)}
}

func TestPortalPagesFromLinkToReply(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		c := w.serve()
		_, token := w.deposit(Deposit{Content: Content{Subject: "Your lab results", Text: "plain",
			HTML:        `<p>SSN 078-05-1120</p><script>alert(1)</script>`,
			Attachments: []Attachment{{Filename: "results.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7")}}}})
		base := w.srv.URL + "/p/" + token

		start := get(t, c, base)
		if start.status != 200 || !contains(start.body, `lang="en"`, `name="viewport"`, "p***@patient.example", `id="send-code"`) ||
			strings.Contains(start.body, "078-05-1120") || strings.Contains(start.body, "lab results") {
			t.Fatalf("start page: %d %s", start.status, start.body)
		}
		csp := start.header.Get("Content-Security-Policy")
		if !contains(csp, "default-src 'none'", "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("start page CSP: %q", csp)
		}
		pre := csrfOf(t, start.body)
		if r := post(t, c, base+"/code", url.Values{"csrf": {pre}}, nil); r.status != 303 {
			t.Fatalf("ask for a code: %d %s", r.status, r.body)
		}
		code := codePattern.FindStringSubmatch(w.out.last(t, PurposeCode).Text)[1]
		verify := get(t, c, base+"/verify?sent=1")
		if !contains(verify.body, `<label for="code">`, `autocomplete="one-time-code"`) {
			t.Errorf("verify page: %s", verify.body)
		}
		if r := post(t, c, base+"/verify", url.Values{"csrf": {pre}, "code": {"999999"}}, nil); r.status != 401 ||
			!strings.Contains(r.body, `role="alert"`) {
			t.Errorf("a wrong code: %d", r.status)
		}
		r := post(t, c, base+"/verify", url.Values{"csrf": {pre}, "code": {code}}, nil)
		if r.status != 303 {
			t.Fatalf("the right code: %d %s", r.status, r.body)
		}
		if ck := findCookie(r.header, CookieName); ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("session cookie: %+v", ck)
		}

		msg := get(t, c, base)
		if msg.status != 200 || !contains(msg.body, "<h1 id=\"title\">Your lab results</h1>", `sandbox src="/p/`+token+`/body"`,
			"results.pdf", `id="reply-form"`, `http-equiv="refresh"`) {
			t.Fatalf("message page: %d %s", msg.status, msg.body)
		}
		body := get(t, c, base+"/body")
		if !strings.HasPrefix(body.header.Get("Content-Security-Policy"), "sandbox;") || !strings.Contains(body.body, "078-05-1120") ||
			body.header.Get("X-Frame-Options") != "SAMEORIGIN" {
			t.Errorf("framed body: %v", body.header)
		}
		file := get(t, c, base+"/attachments/0")
		if file.body != "%PDF-1.7" || file.header.Get("Content-Disposition") != `attachment; filename=results.pdf` ||
			file.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("download: %v %q", file.header, file.body)
		}
		if get(t, c, base+"/attachments/7").status != 404 || get(t, c, base+"/attachments/x").status != 404 {
			t.Error("a missing attachment is not 404")
		}

		sess := csrfOf(t, msg.body)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf", sess)
		_ = mw.WriteField("text", "Can we move it to Friday?")
		fw, _ := mw.CreateFormFile("attachment", "insurance card.png")
		_, _ = fw.Write([]byte("\x89PNG card"))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", base+"/reply", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 303 {
			t.Fatalf("reply: %d", resp.StatusCode)
		}
		rep := w.out.last(t, PurposeReply)
		if !strings.Contains(rep.Text, "Friday") || len(rep.Attachments) != 1 || rep.Attachments[0].Filename != "insurance card.png" {
			t.Errorf("the forwarded reply: %+v", rep)
		}

		if r := post(t, c, base+"/logout", url.Values{"csrf": {sess}}, nil); r.status != 303 {
			t.Fatalf("sign out: %d", r.status)
		}
		if again := get(t, c, base); !strings.Contains(again.body, `id="send-code"`) {
			t.Error("signed out, the message still shows")
		}
		if b := get(t, c, base+"/body"); b.status != 303 {
			t.Errorf("the body after sign-out: %d", b.status)
		}
	})
}

func TestPortalFormsRefuseForgedRequests(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		c := w.serve()
		_, token := w.deposit(Deposit{})
		base := w.srv.URL + "/p/" + token
		pre := csrfOf(t, get(t, c, base).body)
		cases := []struct {
			name   string
			path   string
			form   url.Values
			header map[string]string
		}{
			{"code request without a token", "/code", url.Values{}, nil},
			{"code request with a wrong token", "/code", url.Values{"csrf": {"forged"}}, nil},
			{"code request from another site", "/code", url.Values{"csrf": {pre}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
			{"code request from another origin", "/code", url.Values{"csrf": {pre}}, map[string]string{"Origin": "https://evil.example"}},
			{"verify without a token", "/verify", url.Values{"code": {"123456"}}, nil},
		}
		for _, tc := range cases {
			if r := post(t, c, base+tc.path, tc.form, tc.header); r.status != 403 {
				t.Errorf("%s: %d", tc.name, r.status)
			}
		}
		if len(w.out.all()) != 1 {
			t.Errorf("a forged request sent a code (%d notices)", len(w.out.all()))
		}

		// Signed in, the session's forms need the session's token.
		post(t, c, base+"/code", url.Values{"csrf": {pre}}, nil)
		code := codePattern.FindStringSubmatch(w.out.last(t, PurposeCode).Text)[1]
		post(t, c, base+"/verify", url.Values{"csrf": {pre}, "code": {code}}, nil)
		for name, tok := range map[string]string{"the pre-sign-in token": pre, "none": ""} {
			if r := post(t, c, base+"/reply", url.Values{"csrf": {tok}, "text": {"forged"}}, nil); r.status != 403 {
				t.Errorf("reply with %s: %d", name, r.status)
			}
			if r := post(t, c, base+"/logout", url.Values{"csrf": {tok}}, nil); r.status != 403 {
				t.Errorf("sign-out with %s: %d", name, r.status)
			}
		}
		for _, n := range w.out.all() {
			if n.Purpose == PurposeReply {
				t.Error("a forged reply was sent")
			}
		}
	})
}

func TestPortalPagesForLinksThatDoNotOpen(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		c := w.serve()
		id, token := w.deposit(Deposit{})
		_, locked := w.deposit(Deposit{})
		wrong := url.Values{"code": {"000000"}}
		pre := csrfOf(t, get(t, c, w.srv.URL+"/p/"+locked).body)
		post(t, c, w.srv.URL+"/p/"+locked+"/code", url.Values{"csrf": {pre}}, nil)
		wrong.Set("csrf", pre)
		var last page
		for range 5 {
			last = post(t, c, w.srv.URL+"/p/"+locked+"/verify", wrong, nil)
		}
		if last.status != 429 || !strings.Contains(last.body, "Too many wrong codes") {
			t.Errorf("the fifth wrong code: %d", last.status)
		}
		if p := get(t, c, w.srv.URL+"/p/"+locked); p.status != 429 || p.header.Get("Retry-After") == "" {
			t.Errorf("a locked link: %d", p.status)
		}

		tampered := "A" + token[1:]
		if tampered == token {
			tampered = "B" + token[1:]
		}
		for name, tok := range map[string]string{"tampered": tampered, "unknown": strings.Repeat("z", 43)} {
			if p := get(t, c, w.srv.URL+"/p/"+tok); p.status != 404 || !strings.Contains(p.body, "This link is not valid") {
				t.Errorf("%s link: %d", name, p.status)
			}
		}
		if _, err := w.svc.Recall(t.Context(), w.acct, id, Actor{Kind: "client", ID: "c"}); err != nil {
			t.Fatal(err)
		}
		if p := get(t, c, w.srv.URL+"/p/"+token); p.status != 410 || !strings.Contains(p.body, "withdrawn") {
			t.Errorf("a recalled link: %d", p.status)
		}
	})
}

func findCookie(h http.Header, name string) *http.Cookie {
	for _, ck := range (&http.Response{Header: h}).Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

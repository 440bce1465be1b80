package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/sealpost/sealpost/internal/store"
)

// verifyClinicDomain adds clinic.example, publishes its records in the
// loopback DNS and verifies it.
func verifyClinicDomain(t *testing.T, w mailWorld) {
	t.Helper()
	status, _, body := w.api.call("POST", "/v1/domains", w.owner, "application/json", `{"domain":"clinic.example"}`)
	var d domainAnswer
	if status != 201 || json.Unmarshal(body, &d) != nil {
		t.Fatalf("add domain: %d %s", status, body)
	}
	for _, r := range d.DNSRecords {
		if r.Required {
			if err := w.dns.Add(r.Name + ". 60 IN TXT " + quoteTXT(r.Value)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if status, _, body := w.api.call("POST", "/v1/domains/clinic.example/verify", w.owner, "", ""); status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
}

// htmlPart returns the decoded text/html part of a message.
func htmlPart(t *testing.T, raw []byte) string {
	t.Helper()
	e, err := message.Read(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var out string
	_ = e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil {
			return err
		}
		if mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); mt == "text/html" {
			b, _ := io.ReadAll(p.Body)
			out = string(b)
		}
		return nil
	})
	return out
}

const publicURL = "https://mail.clinic.example"

var trackedURL = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `(/t/c/|/t/o/|/u/)[A-Za-z0-9_-]+`)

func TestTrackingAndOneClickUnsubscribeThroughTheServer(t *testing.T) {
	w := serveWithMail(t, "SEALPOST_HTTP_PUBLIC_URL="+publicURL)
	verifyClinicDomain(t, w)
	html := `<html><body><p>Flu shots are here.</p><a href="https://clinic.example/flu?visit=42">Book</a> <a href="mailto:care@clinic.example">Mail us</a></body></html>`
	send := func(kind string) string {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"from": "Clinic <news@clinic.example>", "to": []string{"pat@patient.example"},
			"subject": "News", "html": html, "kind": kind})
		status, _, resp := w.api.call("POST", "/v1/messages", w.owner, "application/json", string(body))
		var acc struct {
			ID         string `json:"id"`
			Recipients []struct {
				State string `json:"state"`
			} `json:"recipients"`
		}
		if status != 202 || json.Unmarshal(resp, &acc) != nil {
			t.Fatalf("send %s: %d %s", kind, status, resp)
		}
		return acc.ID + " " + acc.Recipients[0].State
	}
	marketing, _, _ := strings.Cut(send("marketing"), " ")
	got := w.waitForSink(t, 1)[0]
	data := string(got.Data)

	// RFC 2369 and RFC 8058 header fields, signed by DKIM (RFC 8058 §4).
	if !regexp.MustCompile(`(?m)^List-Unsubscribe: <`+regexp.QuoteMeta(publicURL)+`/u/[A-Za-z0-9_-]+>\r$`).MatchString(data) ||
		!strings.Contains(data, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") {
		t.Fatalf("the marketing message lacks the unsubscribe header fields:\n%s", data)
	}
	if !regexp.MustCompile(`h=[^;]*List-Unsubscribe:List-Unsubscribe-Post`).MatchString(strings.ReplaceAll(strings.ReplaceAll(data, "\r\n", ""), " ", "")) {
		t.Error("the DKIM signatures do not cover List-Unsubscribe and List-Unsubscribe-Post")
	}
	body := htmlPart(t, got.Data)
	if strings.Contains(body, "clinic.example/flu") || !strings.Contains(body, "mailto:care@clinic.example") {
		t.Errorf("links not rewritten as they should be:\n%s", body)
	}
	var click, pixel, unsubscribe string
	// The decoded HTML part, then the header (the raw body is
	// quoted-printable, where soft line breaks cut tokens).
	header, _, _ := strings.Cut(data, "\r\n\r\n")
	for _, m := range trackedURL.FindAllStringSubmatch(body+" "+header, -1) {
		path := strings.TrimPrefix(m[0], publicURL)
		switch m[1] {
		case "/t/c/":
			click = path
		case "/t/o/":
			pixel = path
		case "/u/":
			unsubscribe = path
		}
	}
	if click == "" || pixel == "" || unsubscribe == "" {
		t.Fatalf("tracking URLs missing: click %q pixel %q unsubscribe %q\n%s", click, pixel, unsubscribe, body)
	}

	// The public endpoints, reached as a recipient would (the proxy in
	// front maps the public URL to the server).
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(method, path, contentType, form string) *http.Response {
		req, _ := http.NewRequest(method, w.base+path, strings.NewReader(form))
		req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone) AppleWebKit Mobile Safari")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get("GET", pixel, "", ""); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" {
		t.Errorf("pixel: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp := get("GET", click, "", ""); resp.StatusCode != 302 || resp.Header.Get("Location") != "https://clinic.example/flu?visit=42" ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("click %s: %d %q\n%s", click, resp.StatusCode, resp.Header, body)
	}
	if resp := get("GET", unsubscribe, "", ""); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self'") {
		t.Errorf("unsubscribe page: %d %q", resp.StatusCode, resp.Header)
	}
	if resp := get("GET", "/t/c/"+strings.Repeat("A", 60), "", ""); resp.StatusCode != 404 {
		t.Errorf("forged click: %d", resp.StatusCode)
	}
	if resp := get("POST", unsubscribe, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); resp.StatusCode != 200 ||
		len(resp.Cookies()) != 0 {
		t.Errorf("one-click unsubscribe: %d", resp.StatusCode)
	}

	// The events, as webhooks and reports read them (delivered is
	// recorded just after the sink's answer).
	var types string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if types = messageEvents(t, w, marketing); strings.Contains(types, "delivered") {
			break
		}
	}
	for _, want := range []string{"queued", "delivered", "opened", "clicked", "unsubscribed"} {
		if !strings.Contains(types, want) {
			t.Errorf("events of the marketing message: %s; want %s", types, want)
		}
	}
	if status, _, body := w.api.call("GET", "/v1/suppressions", w.owner, "", ""); status != 200 ||
		!strings.Contains(string(body), `"address":"pat@patient.example"`) || !strings.Contains(string(body), `"reason":"unsubscribe"`) {
		t.Errorf("suppressions: %d %s", status, body)
	}
	if _, state, _ := strings.Cut(send("marketing"), " "); state != "suppressed" {
		t.Errorf("a later marketing message to the unsubscribed address: %s", state)
	}
}

func TestTransactionalMailIsNotTrackedByDefault(t *testing.T) {
	w := serveWithMail(t, "SEALPOST_HTTP_PUBLIC_URL="+publicURL)
	verifyClinicDomain(t, w)
	msg := `{"from":"reminders@clinic.example","to":["pat@patient.example"],"subject":"Your results","html":"<p>See <a href=\"https://portal.clinic.example/r/1\">your results</a>.</p>"}`
	if status, _, body := w.api.call("POST", "/v1/messages", w.owner, "application/json", msg); status != 202 {
		t.Fatalf("send: %d %s", status, body)
	}
	got := w.waitForSink(t, 1)[0]
	if strings.Contains(string(got.Data), "\nList-Unsubscribe:") || strings.Contains(string(got.Data), publicURL) ||
		!strings.Contains(htmlPart(t, got.Data), `href="https://portal.clinic.example/r/1"`) {
		t.Errorf("a transactional message was instrumented:\n%s", got.Data)
	}
}

// messageEvents lists a message's event types, read from the server's
// SQLite database (the API has no event listing yet).
func messageEvents(t *testing.T, w mailWorld, id string) string {
	t.Helper()
	var dataDir string
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "SEALPOST_DATA_DIR="); ok {
			dataDir = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dataDir, "sealpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Reader().Query(ctx, "SELECT type FROM message_events WHERE message_id = $1 ORDER BY time", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var typ string
		_ = rows.Scan(&typ)
		types = append(types, typ)
	}
	return strings.Join(types, " ")
}

func TestTrackingSettingsChangeTheDefaults(t *testing.T) {
	w := serveWithMail(t, "SEALPOST_HTTP_PUBLIC_URL="+publicURL)
	verifyClinicDomain(t, w)
	if status, _, body := w.api.call("GET", "/v1/tracking-settings", w.owner, "", ""); status != 200 ||
		strings.TrimSpace(string(body)) != `{"transactional":{"opens":false,"clicks":false},"marketing":{"opens":true,"clicks":true}}` {
		t.Fatalf("defaults: %d %s", status, body)
	}
	for _, bad := range []string{`{}`, `{"transactional":{"opens":true,"clicks":true},"marketing":{"opens":false}}`} {
		if status, _, body := w.api.call("PUT", "/v1/tracking-settings", w.owner, "application/json", bad); status != 422 {
			t.Errorf("PUT %s: %d %s", bad, status, body)
		}
	}
	if status, _, body := w.api.call("PUT", "/v1/tracking-settings", w.owner, "application/json",
		`{"transactional":{"opens":false,"clicks":false},"marketing":{"opens":false,"clicks":true},"extra":1}`); status != 400 {
		t.Errorf("unknown field: %d %s", status, body)
	}
	set := `{"transactional":{"opens":false,"clicks":false},"marketing":{"opens":false,"clicks":true}}`
	if status, _, body := w.api.call("PUT", "/v1/tracking-settings", w.owner, "application/json", set); status != 200 || strings.TrimSpace(string(body)) != set {
		t.Fatalf("PUT: %d %s", status, body)
	}
	if status, _, body := w.api.call("GET", "/v1/audit-events?action=tracking.settings_updated", w.owner, "", ""); status != 200 ||
		!strings.Contains(string(body), `"marketing_opens":"false"`) {
		t.Errorf("audit: %d %s", status, body)
	}
	msg := `{"from":"news@clinic.example","to":["pat@patient.example"],"subject":"News","kind":"marketing","html":"<p><a href=\"https://clinic.example/x\">x</a></p>"}`
	if status, _, body := w.api.call("POST", "/v1/messages", w.owner, "application/json", msg); status != 202 {
		t.Fatalf("send: %d %s", status, body)
	}
	body := htmlPart(t, w.waitForSink(t, 1)[0].Data)
	if strings.Contains(body, publicURL+"/t/o/") || !strings.Contains(body, publicURL+"/t/c/") {
		t.Errorf("with opens off and clicks on by default:\n%s", body)
	}
}

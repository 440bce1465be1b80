package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/pkg/webhook"
)

// hookReceiver is a customer's endpoint: it verifies each request's
// signature with the secret it is given and keeps the verified events.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	events []hookEvent
	bad    int
}

type hookEvent struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Recipient string `json:"recipient"`
	Message   *struct {
		ID       string            `json:"id"`
		Tags     []string          `json:"tags"`
		Metadata map[string]string `json:"metadata"`
	} `json:"message"`
	Details map[string]any `json:"details"`
	header  string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), h.secret, 0); err != nil {
			h.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var e hookEvent
		_ = json.Unmarshal(body, &e)
		e.header = r.Header.Get(webhook.EventIDHeader)
		h.events = append(h.events, e)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) wait(t *testing.T, typ string, n int) []hookEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		var got []hookEvent
		for _, e := range h.events {
			if e.Type == typ {
				got = append(got, e)
			}
		}
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the receiver got fewer than %d %s events", n, typ)
	return nil
}

func TestADeliveredMessageProducesASignedWebhook(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			env := []string{"SEALPOST_WEBHOOKS_ALLOW_HTTP=true", "SEALPOST_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true",
				"SEALPOST_WEBHOOKS_POLL_INTERVAL=300ms", "SEALPOST_QUEUE_POLL_INTERVAL=100ms"}
			if d == store.Postgres {
				env = append(env, "SEALPOST_DATABASE_URL="+storetest.URL(t, d))
			}
			webhookEndToEnd(t, serveWithMail(t, env...))
		})
	}
}

func webhookEndToEnd(t *testing.T, w mailWorld) {
	api, owner := w.api, w.owner
	recv := newHookReceiver(t)

	// Bad input is refused with a problem naming the field.
	bad := []struct {
		name, body string
		want       int
	}{
		{"unknown field", `{"url":"` + recv.URL + `","events":["delivered"],"secret":"mine"}`, 400},
		{"not a URL", `{"url":"hooks","events":["delivered"]}`, 422},
		{"another scheme", `{"url":"ftp://hooks.example.org/x","events":["delivered"]}`, 422},
		{"credentials in the URL", `{"url":"https://u:p@hooks.example.org/x","events":["delivered"]}`, 422},
		{"unknown event type", `{"url":"` + recv.URL + `","events":["delivered","exploded"]}`, 422},
		{"no events", `{"url":"` + recv.URL + `","events":[]}`, 422},
		{"events of the wrong type", `{"url":"` + recv.URL + `","events":"delivered"}`, 422},
		{"malformed JSON", `{"url":`, 400},
	}
	for _, c := range bad {
		if status, _, body := api.call("POST", "/v1/webhooks", owner, "application/json", c.body); status != c.want ||
			!strings.Contains(string(body), "urn:sealpost:problem:") {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.want)
		}
	}

	status, hdr, body := api.call("POST", "/v1/webhooks", owner, "application/json",
		`{"url":"`+recv.URL+`/sealpost?token=t1","events":["delivered","bounced"]}`)
	var hook struct {
		ID     string   `json:"id"`
		Secret string   `json:"secret"`
		Events []string `json:"events"`
	}
	if status != 201 || json.Unmarshal(body, &hook) != nil || !strings.HasPrefix(hook.Secret, "whsec_") ||
		hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("create webhook: %d %s", status, body)
	}
	recv.mu.Lock()
	recv.secret = hook.Secret
	recv.mu.Unlock()
	if _, _, body := api.call("GET", "/v1/webhooks/"+hook.ID, owner, "", ""); strings.Contains(string(body), "whsec_") {
		t.Errorf("the secret is shown again: %s", body)
	}

	// A verified domain, and a message to the sink.
	status, _, body = api.call("POST", "/v1/domains", owner, "application/json", `{"domain":"clinic.example"}`)
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
	if status, _, body := api.call("POST", "/v1/domains/clinic.example/verify", owner, "", ""); status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
	status, _, body = api.call("POST", "/v1/messages", owner, "application/json",
		`{"from":"reminders@clinic.example","to":["pat@patient.example"],"subject":"Your results","text":"Secret PHI text",
		  "tags":["results"],"metadata":{"order":"o-7"}}`)
	var acc struct {
		ID string `json:"id"`
	}
	if status != 202 || json.Unmarshal(body, &acc) != nil {
		t.Fatalf("send: %d %s", status, body)
	}
	w.waitForSink(t, 1)

	// The delivered event arrives signed, with the message's tags and
	// metadata and the delivery evidence, and no content.
	got := recv.wait(t, "delivered", 1)[0]
	if got.ID == "" || got.header != got.ID || got.Recipient != "pat@patient.example" || got.Message == nil || got.Message.ID != acc.ID ||
		got.Message.Tags[0] != "results" || got.Message.Metadata["order"] != "o-7" || got.Details["smtp_code"] != float64(250) ||
		got.Details["tls_version"] == nil {
		t.Fatalf("delivered event: %+v", got)
	}
	recv.mu.Lock()
	for _, e := range recv.events {
		if e.Type == "queued" {
			t.Error("an event type the webhook did not subscribe to was sent")
		}
	}
	recv.mu.Unlock()

	// The log shows it; a replay sends the same event id again.
	var log struct {
		Data []struct {
			ID, Status string
			Attempts   int
		} `json:"data"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, _, body = api.call("GET", "/v1/webhooks/"+hook.ID+"/deliveries?status=succeeded", owner, "", "")
		if json.Unmarshal(body, &log) == nil && len(log.Data) == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(log.Data) != 1 || log.Data[0].ID != got.ID {
		t.Fatalf("log: %s", body)
	}
	if status, _, body := api.call("POST", "/v1/webhooks/"+hook.ID+"/deliveries/"+got.ID+"/replay", owner, "", ""); status != 200 ||
		!strings.Contains(string(body), `"status":"succeeded"`) {
		t.Fatalf("replay: %d %s", status, body)
	}
	if again := recv.wait(t, "delivered", 2); again[1].ID != got.ID {
		t.Errorf("replayed event id %q, want %q", again[1].ID, got.ID)
	}
	if status, _, body := api.call("POST", "/v1/webhooks/"+hook.ID+"/test", owner, "", ""); status != 200 ||
		!strings.Contains(string(body), `"event_type":"ping"`) {
		t.Fatalf("test: %d %s", status, body)
	}
	recv.wait(t, "ping", 1)

	// Rotation: the new secret signs (and the old one, for the overlap).
	status, _, body = api.call("POST", "/v1/webhooks/"+hook.ID+"/rotate-secret", owner, "application/json", `{"keep_previous_seconds":0}`)
	var rotated struct {
		Secret string `json:"secret"`
	}
	if status != 200 || json.Unmarshal(body, &rotated) != nil || rotated.Secret == hook.Secret {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if status, _, _ := api.call("POST", "/v1/webhooks/"+hook.ID+"/test", owner, "", ""); status != 200 {
		t.Fatalf("test after rotation: %d", status)
	}
	recv.mu.Lock()
	refused := recv.bad
	recv.secret = rotated.Secret
	recv.mu.Unlock()
	if refused != 1 {
		t.Errorf("the receiver refused %d requests after a rotation with no overlap, want 1", refused)
	}
	if status, _, body := api.call("PATCH", "/v1/webhooks/"+hook.ID, owner, "application/json", `{"enabled":false,"events":["bounced"]}`); status != 200 ||
		!strings.Contains(string(body), `"enabled":false`) {
		t.Fatalf("patch: %d %s", status, body)
	}

	// Another account sees none of it.
	code, out, errOut := run(t, w.env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", out, errOut)
	}
	other := parseCreds(out)
	otherKey := other["client_id"] + ":" + other["client_secret"]
	for _, path := range []string{"/v1/webhooks/" + hook.ID, "/v1/webhooks/" + hook.ID + "/deliveries"} {
		if status, _, _ := api.call("GET", path, otherKey, "", ""); status != 404 {
			t.Errorf("another account reads %s: %d", path, status)
		}
	}
	if status, _, body := api.call("GET", "/v1/webhooks", otherKey, "", ""); status != 200 || string(body) != "{\"data\":[]}\n" {
		t.Errorf("another account lists: %d %s", status, body)
	}
	if status, _, _ := api.call("DELETE", "/v1/webhooks/"+hook.ID, otherKey, "", ""); status != 404 {
		t.Errorf("another account deletes: %d", status)
	}
	if status, _, _ := api.call("DELETE", "/v1/webhooks/"+hook.ID, owner, "", ""); status != 204 {
		t.Errorf("delete: %d", status)
	}
	_, _, body = api.call("GET", "/v1/audit-events?limit=500", owner, "", "")
	for _, action := range []string{"webhook.created", "webhook.secret_rotated", "webhook.updated", "webhook.deleted"} {
		if !strings.Contains(string(body), `"action":"`+action+`"`) {
			t.Errorf("audit log lacks %s", action)
		}
	}
	if strings.Contains(string(body), "whsec_") || strings.Contains(string(body), "token=t1") {
		t.Error("the audit log holds a secret or the URL's token")
	}
}

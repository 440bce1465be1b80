package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// mailWorld is a running server whose delivery goes to a loopback sink
// over verified TLS, with a loopback DNS server for domain verification.
type mailWorld struct {
	bootstrapped
	dns  *dnstest.Server
	sink *smtptest.Sink
	out  *syncBuffer // the server's stdout
}

// waitForSink waits until the sink has received n messages.
func (w mailWorld) waitForSink(t *testing.T, n int) []smtptest.Received {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := w.sink.Messages(); len(got) >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the sink received %d messages, want %d", len(w.sink.Messages()), n)
	return nil
}

func serveWithMail(t *testing.T, extraEnv ...string) mailWorld {
	t.Helper()
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	cert, certPEM, err := smtptest.Certificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := smtptest.Start(&cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "sink-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEALPOST_DATA_DIR=" + filepath.Join(dir, "data"), "SEALPOST_DNS_SERVERS=" + dns.Addr,
		"SEALPOST_DELIVERY_ROUTES=patient.example=" + sink.Addr, "SEALPOST_DELIVERY_TLS_CA_FILE=" + ca,
		"SEALPOST_DELIVERY_TLS_POLICY=required", "SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example",
		"SEALPOST_SUBMISSION_ADDR=off", "SEALPOST_SUBMISSION_TLS_ADDR=off"}
	env = append(env, extraEnv...)
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	return mailWorld{bootstrapped: bootstrapped{env: env, base: base, creds: creds, owner: creds["client_id"] + ":" + creds["client_secret"],
		api: newAPIClient(t, base)}, dns: dns, sink: sink, out: out}
}

type domainAnswer struct {
	Domain     string `json:"domain"`
	Status     string `json:"status"`
	DNSRecords []struct {
		Name, Value string
		Required    bool
	} `json:"dns_records"`
}

func TestSendAMessageThroughTheAPIToARemoteServer(t *testing.T) {
	w := serveWithMail(t)
	api, owner := w.api, w.owner

	// The sending domain: added, published in DNS, verified.
	status, _, body := api.call("POST", "/v1/domains", owner, "application/json", `{"domain":"clinic.example"}`)
	var d domainAnswer
	if status != 201 || json.Unmarshal(body, &d) != nil || d.Status != "pending" {
		t.Fatalf("add domain: %d %s", status, body)
	}
	msg := `{"from":"Clinic <reminders@clinic.example>","to":["pat@patient.example"],"subject":"Your appointment","text":"Tomorrow at 9:00."}`
	if status, _, body := api.call("POST", "/v1/messages", owner, "application/json", msg); status != 422 || !strings.Contains(string(body), "verified sending domain") {
		t.Fatalf("send from an unverified domain: %d %s", status, body)
	}
	for _, r := range d.DNSRecords {
		if r.Required {
			if err := w.dns.Add(r.Name + ". 60 IN TXT " + quoteTXT(r.Value)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if status, _, body := api.call("POST", "/v1/domains/clinic.example/verify", owner, "", ""); status != 200 || !strings.Contains(string(body), `"status":"verified"`) {
		t.Fatalf("verify: %d %s", status, body)
	}

	// Send with an idempotency key; the retry gets the same answer.
	send := func(key, body string) (int, []byte) {
		req, _ := http.NewRequest("POST", w.base+"/v1/messages", strings.NewReader(body))
		req.Header.Set("X-API-Key", owner)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&raw)
		if err := api.contract.Check(req, resp.StatusCode, resp.Header, raw); err != nil {
			t.Errorf("send breaks the contract: %v", err)
		}
		return resp.StatusCode, raw
	}
	status, first := send("appt-42", msg)
	var acc struct {
		ID string `json:"id"`
	}
	if status != 202 || json.Unmarshal(first, &acc) != nil || acc.ID == "" {
		t.Fatalf("send: %d %s", status, first)
	}
	if status, again := send("appt-42", msg); status != 202 || string(again) != string(first) {
		t.Errorf("idempotent retry: %d %s", status, again)
	}
	if status, body := send("appt-42", strings.Replace(msg, "9:00", "10:00", 1)); status != 409 {
		t.Errorf("same key, other body: %d %s", status, body)
	}

	// Delivered by the queue, over verified TLS, signed.
	deadline := time.Now().Add(30 * time.Second)
	var m struct {
		Status     string `json:"status"`
		Recipients []struct {
			State      string `json:"state"`
			TLSVersion string `json:"tls_version"`
		} `json:"recipients"`
	}
	for time.Now().Before(deadline) {
		_, _, body := api.call("GET", "/v1/messages/"+acc.ID, owner, "", "")
		_ = json.Unmarshal(body, &m)
		if m.Status == "delivered" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := w.sink.Messages()
	if m.Status != "delivered" || len(got) != 1 || !got[0].TLS || m.Recipients[0].TLSVersion == "" {
		t.Fatalf("delivery: status %q, %d messages at the sink", m.Status, len(got))
	}
	if !strings.Contains(string(got[0].Data), "a=ed25519-sha256") ||
		!strings.Contains(string(got[0].Data), "a=rsa-sha256") {
		t.Error("the delivered message lacks an Ed25519 or an RSA DKIM signature")
	}
	if status, _, body := api.call("GET", "/v1/messages?limit=10", owner, "", ""); status != 200 || !strings.Contains(string(body), acc.ID) {
		t.Errorf("list: %d %s", status, body)
	}

	// Bad input: each refused with a problem, nothing accepted.
	many := make([]string, 101)
	for i := range many {
		many[i] = `"p` + string(rune('a'+i%26)) + `@patient.example"`
	}
	bad := []struct {
		name, body string
		want       int
	}{
		{"header injection in subject", `{"from":"reminders@clinic.example","to":["pat@patient.example"],"subject":"a\r\nBcc: x@evil.example","text":"x"}`, 422},
		{"header injection in a name", `{"from":"Clinic\r\nBcc: x@evil.example <reminders@clinic.example>","to":["pat@patient.example"],"text":"x"}`, 422},
		{"reserved custom header", `{"from":"reminders@clinic.example","to":["pat@patient.example"],"text":"x","headers":{"Bcc":"x@evil.example"}}`, 422},
		{"CRLF in a custom header", `{"from":"reminders@clinic.example","to":["pat@patient.example"],"text":"x","headers":{"X-A":"1\r\nBcc: x@evil.example"}}`, 422},
		{"invalid address", `{"from":"reminders@clinic.example","to":["not an address"],"text":"x"}`, 422},
		{"too many recipients", `{"from":"reminders@clinic.example","to":[` + strings.Join(many, ",") + `],"text":"x"}`, 422},
		{"no body", `{"from":"reminders@clinic.example","to":["pat@patient.example"]}`, 422},
		{"unknown field", `{"from":"reminders@clinic.example","to":["pat@patient.example"],"text":"x","priority":"high"}`, 400},
		{"unknown encryption", `{"from":"reminders@clinic.example","to":["pat@patient.example"],"text":"x","encryption":"rot13"}`, 422},
		{"bad attachment", `{"from":"reminders@clinic.example","to":["pat@patient.example"],"text":"x","attachments":[{"filename":"../x","content":"eA=="}]}`, 422},
		{"malformed JSON", `{"from":`, 400},
		{"unverified sender domain", `{"from":"x@unverified.example","to":["pat@patient.example"],"text":"x"}`, 422},
		{"invalid IDN in an address", `{"from":"reminders@clinic.example","to":["pat@xn--a.example"],"text":"x"}`, 422},
		{"oversized message", `{"from":"reminders@clinic.example","to":["pat@patient.example"],"text":"` + strings.Repeat("x", 11<<20) + `"}`, 413},
	}
	for _, c := range bad {
		if status, _, body := api.call("POST", "/v1/messages", owner, "application/json", c.body); status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.want)
		}
	}

	// Another account sees none of it.
	code, out, errOut := run(t, w.env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", out, errOut)
	}
	other := parseCreds(out)
	otherKey := other["client_id"] + ":" + other["client_secret"]
	for _, path := range []string{"/v1/messages/" + acc.ID, "/v1/domains/clinic.example"} {
		if status, _, _ := api.call("GET", path, otherKey, "", ""); status != 404 {
			t.Errorf("another account reads %s: %d", path, status)
		}
	}
	if status, _, body := api.call("POST", "/v1/messages", otherKey, "application/json", msg); status != 422 {
		t.Errorf("another account sends from clinic.example: %d %s", status, body)
	}
}

func TestAdminDomainAdd(t *testing.T) {
	env := []string{"SEALPOST_DATA_DIR=" + t.TempDir()}
	if code, out, errOut := run(t, env, "admin", "bootstrap"); code != 0 {
		t.Fatalf("bootstrap: %s %s", out, errOut)
	}
	code, out, errOut := run(t, env, "admin", "domain", "add", "Hidden.Example", "--skip-dns-check")
	if code != 0 || !strings.Contains(out, "domain: hidden.example") || !strings.Contains(out, "status: verified") ||
		!strings.Contains(out, "._domainkey.hidden.example") {
		t.Fatalf("admin domain add: %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := run(t, env, "admin", "domain", "add", "not a domain", "--skip-dns-check"); code == 0 {
		t.Error("an invalid domain was registered")
	}
}

func quoteTXT(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	return strings.Join(append(parts, `"`+v+`"`), " ")
}

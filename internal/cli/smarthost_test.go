package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// The whole server relays through a smarthost that requires AUTH over
// verified TLS, configured from the environment, and never logs the
// password.
func TestServerRelaysThroughSmarthostWithAuth(t *testing.T) {
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	cert, certPEM, err := smtptest.Certificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := smtptest.Start(&cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Close)
	const password = "relay-secret-do-not-log"
	relay.Set(func(k *smtptest.Sink) { k.Username, k.Password = "clinic", password })
	dir := t.TempDir()
	ca := filepath.Join(dir, "relay-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEALPOST_DATA_DIR=" + filepath.Join(dir, "data"), "SEALPOST_DNS_SERVERS=" + dns.Addr,
		"SEALPOST_DELIVERY_SMARTHOST=" + relay.Addr, "SEALPOST_DELIVERY_SMARTHOST_USERNAME=clinic",
		"SEALPOST_DELIVERY_SMARTHOST_PASSWORD=" + password, "SEALPOST_DELIVERY_TLS_CA_FILE=" + ca,
		"SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example", "SEALPOST_SUBMISSION_ADDR=off", "SEALPOST_SUBMISSION_TLS_ADDR=off"}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	w := mailWorld{bootstrapped: bootstrapped{env: env, base: base, creds: creds, owner: creds["client_id"] + ":" + creds["client_secret"],
		api: newAPIClient(t, base)}, dns: dns, sink: relay, out: out}

	status, _, body := w.api.call("POST", "/v1/domains", w.owner, "application/json", `{"domain":"clinic.example"}`)
	var d domainAnswer
	if status != 201 || json.Unmarshal(body, &d) != nil {
		t.Fatalf("add domain: %d %s", status, body)
	}
	for _, r := range d.DNSRecords {
		if r.Required {
			if err := dns.Add(r.Name + ". 60 IN TXT " + quoteTXT(r.Value)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if status, _, body := w.api.call("POST", "/v1/domains/clinic.example/verify", w.owner, "", ""); status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
	// nowhere.example has no DNS records: only the smarthost can take it.
	msg := `{"from":"reminders@clinic.example","to":["pat@nowhere.example"],"subject":"Reminder","text":"Tomorrow at 9:00."}`
	if status, _, body := w.api.call("POST", "/v1/messages", w.owner, "application/json", msg); status != 202 {
		t.Fatalf("send: %d %s", status, body)
	}
	got := w.waitForSink(t, 1)
	if got[0].AuthUser != "clinic" || !got[0].TLS || got[0].Rcpts[0] != "pat@nowhere.example" {
		t.Fatalf("relay received %+v", got[0])
	}
	if strings.Contains(out.String(), password) {
		t.Fatal("the smarthost password appears in the server's output")
	}
}

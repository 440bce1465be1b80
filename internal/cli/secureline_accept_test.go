package cli_test

import (
	"encoding/json"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// serveSecureLineAccept is a server with a public URL (the portal), the
// relay, and a trusted TLS sink for patient.example and clinic.example.
func serveSecureLineAccept(t *testing.T) mailWorld {
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
		"SEALPOST_DELIVERY_ROUTES=patient.example=" + sink.Addr + ",clinic.example=" + sink.Addr, "SEALPOST_DELIVERY_TLS_CA_FILE=" + ca,
		"SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example", "SEALPOST_SUBMISSION_ADDR=127.0.0.1:0", "SEALPOST_SUBMISSION_TLS_ADDR=off",
		"SEALPOST_HTTP_PUBLIC_URL=" + portalPublicURL}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	return mailWorld{bootstrapped: bootstrapped{env: env, base: base, creds: creds, owner: creds["client_id"] + ":" + creds["client_secret"],
		api: newAPIClient(t, base)}, dns: dns, sink: sink, out: out}
}

// encStatus is the part of a message's status these tests read.
type encStatus struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Recipients []struct {
		Address    string `json:"address"`
		State      string `json:"state"`
		RemoteHost string `json:"remote_host"`
		SMTPReply  string `json:"smtp_reply"`
		Encryption *struct {
			Method  string   `json:"method"`
			Reasons []string `json:"reasons"`
		} `json:"encryption"`
	} `json:"recipients"`
}

func getEncStatus(t *testing.T, w mailWorld, id string) encStatus {
	t.Helper()
	status, _, body := w.api.call("GET", "/v1/messages/"+id, w.owner, "", "")
	var m encStatus
	if status != 200 || json.Unmarshal(body, &m) != nil || len(m.Recipients) == 0 {
		t.Fatalf("status of %s: %d %s", id, status, body)
	}
	return m
}

// sinkFor waits for a message to rcpt at the sink and returns the last one.
func sinkFor(t *testing.T, w mailWorld, rcpt string, n int) []smtptest.Received {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []smtptest.Received
		for _, m := range w.sink.Messages() {
			if len(m.Rcpts) > 0 && m.Rcpts[0] == rcpt {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink has %d messages to %s, want %d", len(got), rcpt, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const phiText = "Patient SSN 205-89-4542, diagnosis E11.9."

func TestSecureLineDecidesAtAcceptance(t *testing.T) {
	w := serveSecureLineAccept(t)
	verifyDomain(t, w, "clinic.example")
	api, owner := w.api, w.owner
	setMode := func(mode string) {
		t.Helper()
		if status, _, out := api.call("PUT", "/v1/secureline/settings", owner, "application/json",
			`{"mode":"`+mode+`","subject_tag":"[secure]"}`); status != 200 {
			t.Fatalf("set %s: %d %s", mode, status, out)
		}
	}

	t.Run("a clean message under forced TLS is recorded as tls and delivered over verified TLS", func(t *testing.T) {
		id := sendJSON(t, w, `{"from":"Clinic <results@clinic.example>","to":["tls@patient.example"],"subject":"Hello","text":"See you soon."}`)
		waitForStatus(t, w, id, "delivered")
		m := getEncStatus(t, w, id)
		if e := m.Recipients[0].Encryption; e == nil || e.Method != "tls" {
			t.Fatalf("encryption: %+v", e)
		}
		got := sinkFor(t, w, "tls@patient.example", 1)
		if !got[0].TLS {
			t.Error("delivered without TLS")
		}
	})

	t.Run("PHI to a recipient without keys under portal_always goes to the portal, the notice carries no PHI", func(t *testing.T) {
		setMode("portal_always")
		defer setMode("forced_tls")
		status, _, out := api.call("POST", "/v1/messages", owner, "application/json",
			`{"from":"Clinic <results@clinic.example>","to":["kim@patient.example"],"subject":"Your lab results","text":"`+phiText+`"}`)
		var acc messageAnswer
		if status != 202 || json.Unmarshal(out, &acc) != nil || acc.Recipients[0].State != "delivered" {
			t.Fatalf("send: %d %s", status, out)
		}
		m := getEncStatus(t, w, acc.ID)
		r := m.Recipients[0]
		if r.State != "delivered" || r.RemoteHost != "portal" || r.Encryption == nil || r.Encryption.Method != "portal" {
			t.Fatalf("recipient: %+v", r)
		}
		reasons := strings.Join(r.Encryption.Reasons, " | ")
		if !strings.Contains(reasons, "icd10") || !strings.Contains(reasons, "ssn") || strings.Contains(reasons, "205-89") {
			t.Errorf("reasons: %s", reasons)
		}
		notice := sinkFor(t, w, "kim@patient.example", 1)[0]
		for _, phi := range []string{"205-89-4542", "E11.9", "lab results", "diagnosis"} {
			if strings.Contains(string(notice.Data), phi) {
				t.Errorf("the notice carries %q", phi)
			}
		}
		if !portalLink.Match(notice.Data) {
			t.Errorf("no portal link in the notice")
		}
	})

	rules := `{"rules":[{"name":"block tagged","conditions":{"tags":["blockme"]},"action":"block"},` +
		`{"name":"hold tagged","conditions":{"tags":["holdme"]},"action":"quarantine"}]}`
	if status, _, out := api.call("PUT", "/v1/dlp-policy", owner, "application/json", rules); status != 200 {
		t.Fatalf("policy: %d %s", status, out)
	}

	t.Run("a block rule refuses the send with 422 and stores nothing", func(t *testing.T) {
		status, _, out := api.call("POST", "/v1/messages", owner, "application/json",
			`{"from":"results@clinic.example","to":["blocked@patient.example"],"subject":"s","text":"t","tags":["blockme"]}`)
		if status != 422 || !strings.Contains(string(out), "urn:sealpost:problem:message-blocked") {
			t.Fatalf("blocked send: %d %s", status, out)
		}
		if status, _, out := api.call("GET", "/v1/messages?tag=blockme", owner, "", ""); status != 200 || !strings.Contains(string(out), `"data":[]`) {
			t.Errorf("a blocked message was stored: %d %s", status, out)
		}
	})

	t.Run("a quarantine rule holds the recipients; release delivers, reject fails", func(t *testing.T) {
		held := func(to string) string {
			t.Helper()
			status, _, out := api.call("POST", "/v1/messages", owner, "application/json",
				`{"from":"results@clinic.example","to":["`+to+`"],"subject":"s","text":"t","tags":["holdme"]}`)
			var acc messageAnswer
			if status != 202 || json.Unmarshal(out, &acc) != nil || acc.Recipients[0].State != "quarantined" {
				t.Fatalf("held send: %d %s", status, out)
			}
			if m := getEncStatus(t, w, acc.ID); m.Status != "quarantined" || m.Recipients[0].State != "quarantined" {
				t.Fatalf("held status: %+v", m)
			}
			return acc.ID
		}
		released := held("released@patient.example")
		if status, _, out := api.call("POST", "/v1/quarantine/"+released+"/release", owner, "", ""); status != 200 {
			t.Fatalf("release: %d %s", status, out)
		}
		waitForStatus(t, w, released, "delivered")
		sinkFor(t, w, "released@patient.example", 1)

		rejected := held("rejected@patient.example")
		if status, _, out := api.call("POST", "/v1/quarantine/"+rejected+"/reject", owner, "", ""); status != 200 {
			t.Fatalf("reject: %d %s", status, out)
		}
		m := getEncStatus(t, w, rejected)
		if m.Status != "failed" || m.Recipients[0].SMTPReply != "rejected in quarantine" {
			t.Errorf("rejected: %+v", m)
		}
	})

	t.Run("a pgp pin for a recipient without a key is refused with 422 naming the position", func(t *testing.T) {
		status, _, out := api.call("POST", "/v1/messages", owner, "application/json",
			`{"from":"results@clinic.example","to":["a@patient.example","nokey@patient.example"],"subject":"s","text":"t","encryption":"pgp"}`)
		if status != 422 || !strings.Contains(string(out), "urn:sealpost:problem:encryption-unavailable") ||
			!strings.Contains(string(out), `"field":"to[0]"`) || strings.Contains(string(out), "patient.example") {
			t.Fatalf("pgp pin without a key: %d %s", status, out)
		}
	})

	t.Run("the relay subject tag raises the message to the portal and is removed", func(t *testing.T) {
		addr, _ := relayAddrs(t, w.out.String())
		raw := "From: Clinic <results@clinic.example>\r\nTo: lee@patient.example\r\nSubject: [secure] Lab results\r\n\r\nAll normal.\r\n"
		if err := smtp.SendMail(addr, smtp.PlainAuth("", w.creds["client_id"], w.creds["client_secret"], "127.0.0.1"),
			"results@clinic.example", []string{"lee@patient.example"}, []byte(raw)); err != nil {
			t.Fatalf("relay: %v", err)
		}
		notice := sinkFor(t, w, "lee@patient.example", 1)[0]
		if strings.Contains(string(notice.Data), "[secure]") || strings.Contains(string(notice.Data), "Lab results") {
			t.Error("the notice carries the subject")
		}
		// The newest message is the notice; find the relayed one by recipient.
		status, _, out := api.call("GET", "/v1/messages?limit=10", owner, "", "")
		var page struct{ Data []encStatus }
		if status != 200 || json.Unmarshal(out, &page) != nil {
			t.Fatalf("list: %d %s", status, out)
		}
		var found bool
		for _, m := range page.Data {
			for _, r := range m.Recipients {
				if r.Address == "lee@patient.example" && r.RemoteHost == "portal" {
					found = true
					if r.Encryption == nil || r.Encryption.Method != "portal" ||
						!strings.Contains(strings.Join(r.Encryption.Reasons, " "), "secure tag") {
						t.Errorf("relayed recipient: %+v", r)
					}
				}
			}
		}
		if !found {
			t.Errorf("no relayed message delivered to the portal: %s", out)
		}
	})
}

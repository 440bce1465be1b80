package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// secureDeliveryWorld is a running server with a verified sending domain
// and one sink reached by two routes: patient.example by the address its
// trusted certificate names (verified TLS), wrongname.example by a name
// the certificate does not hold (TLS that does not verify).
type secureDeliveryWorld struct {
	bootstrapped
	sink *smtptest.Sink
}

// serveSecureDelivery starts the world; each of more may add DNS records
// and returns environment variables for the server.
func serveSecureDelivery(t *testing.T, more ...func(dns *dnstest.Server) []string) secureDeliveryWorld {
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
	if err := dns.Add("mx.wrongname.example. 60 IN A 127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(sink.Addr, ":")
	dir := t.TempDir()
	ca := filepath.Join(dir, "sink-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEALPOST_DATA_DIR=" + filepath.Join(dir, "data"), "SEALPOST_DNS_SERVERS=" + dns.Addr,
		"SEALPOST_DELIVERY_ROUTES=patient.example=" + sink.Addr + ",wrongname.example=mx.wrongname.example:" + port,
		"SEALPOST_DELIVERY_TLS_CA_FILE=" + ca, "SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example",
		// Opportunistic, so that only SecureLine's decisions insist on verified TLS.
		"SEALPOST_DELIVERY_TLS_POLICY=opportunistic", "SEALPOST_HTTP_PUBLIC_URL=https://portal.test",
		"SEALPOST_SUBMISSION_ADDR=off", "SEALPOST_SUBMISSION_TLS_ADDR=off"}
	for _, m := range more {
		env = append(env, m(dns)...)
	}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	w := secureDeliveryWorld{bootstrapped: bootstrapped{env: env, base: base, creds: creds,
		owner: creds["client_id"] + ":" + creds["client_secret"], api: newAPIClient(t, base)}, sink: sink}

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
	return w
}

type deliveredRecipient struct {
	Address    string `json:"address"`
	State      string `json:"state"`
	RemoteHost string `json:"remote_host"`
	SMTPReply  string `json:"smtp_reply"`
	Encryption *struct {
		Method  string   `json:"method"`
		Reasons []string `json:"reasons"`
	} `json:"encryption"`
}

// send posts a message to one recipient and waits until it is delivered.
func (w secureDeliveryWorld) send(t *testing.T, to string) deliveredRecipient {
	t.Helper()
	msg := `{"from":"Clinic <results@clinic.example>","to":["` + to + `"],"subject":"Your lab results",` +
		`"text":"Your HbA1c result is 6.1 (E11.9)."}`
	status, _, body := w.api.call("POST", "/v1/messages", w.owner, "application/json", msg)
	var acc struct {
		ID string `json:"id"`
	}
	if status != 202 || json.Unmarshal(body, &acc) != nil {
		t.Fatalf("send: %d %s", status, body)
	}
	var m struct {
		Recipients []deliveredRecipient `json:"recipients"`
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, _, body := w.api.call("GET", "/v1/messages/"+acc.ID, w.owner, "", "")
		if json.Unmarshal(body, &m) == nil && len(m.Recipients) == 1 && m.Recipients[0].State == "delivered" {
			return m.Recipients[0]
		}
	}
	t.Fatalf("not delivered: %+v", m.Recipients)
	return deliveredRecipient{}
}

// received waits for the sink's message to address.
func (w secureDeliveryWorld) received(t *testing.T, address string) smtptest.Received {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, m := range w.sink.Messages() {
			if len(m.Rcpts) == 1 && m.Rcpts[0] == address {
				return m
			}
		}
	}
	t.Fatalf("the sink received nothing for %s", address)
	return smtptest.Received{}
}

func TestSecureLineAtDeliveryThroughTheServer(t *testing.T) {
	w := serveSecureDelivery(t)

	// A recipient with a PGP key on file gets PGP/MIME that its key opens.
	entity := keystest.PGPEntity(t, "pat@patient.example", keystest.PGPSpec{})
	upload, _ := json.Marshal(map[string]string{"address": "pat@patient.example", "public_key": string(keystest.ArmorPublic(t, entity))})
	if status, _, body := w.api.call("POST", "/v1/keys/pgp", w.owner, "application/json", string(upload)); status != 201 {
		t.Fatalf("upload PGP key: %d %s", status, body)
	}
	r := w.send(t, "pat@patient.example")
	if r.Encryption == nil || r.Encryption.Method != "pgp" || r.RemoteHost != "127.0.0.1" {
		t.Fatalf("pgp recipient: %+v", r)
	}
	got := w.received(t, "pat@patient.example")
	if !bytes.Contains(got.Data, []byte("multipart/encrypted")) || bytes.Contains(got.Data, []byte("HbA1c")) ||
		bytes.Contains(got.Data, []byte("Your lab results")) {
		t.Fatalf("the PGP recipient's copy is not encrypted only:\n%s", got.Data)
	}
	inner := decryptPGPMIME(t, got.Data, entity)
	if !bytes.Contains(inner, []byte("Your lab results")) || !bytes.Contains(inner, []byte("HbA1c")) {
		t.Errorf("the decrypted entity lacks the subject or the text:\n%s", inner)
	}

	// A recipient decided for verified TLS whose server's certificate
	// does not verify goes to the portal; the sink sees only the notice.
	r = w.send(t, "kim@wrongname.example")
	if r.RemoteHost != "portal" || !strings.Contains(r.SMTPReply, "delivered to the portal") ||
		r.Encryption == nil || r.Encryption.Method != "portal" {
		t.Fatalf("tls recipient without verified TLS: %+v", r)
	}
	notice := w.received(t, "kim@wrongname.example")
	if bytes.Contains(notice.Data, []byte("HbA1c")) || bytes.Contains(notice.Data, []byte("Your lab results")) ||
		!bytes.Contains(notice.Data, []byte("https://portal.test/p/")) {
		t.Errorf("the notice carries content or no link:\n%s", notice.Data)
	}
	if n := len(w.sink.Messages()); n != 2 {
		t.Errorf("the sink received %d messages, want 2 (the PGP message, the notice)", n)
	}
}

// decryptPGPMIME returns the entity inside a PGP/MIME message (RFC 3156
// §4) decrypted with key.
func decryptPGPMIME(t *testing.T, msg []byte, key *openpgp.Entity) []byte {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no encrypted part: %v", err)
		}
		if !strings.HasPrefix(p.Header.Get("Content-Type"), "application/octet-stream") {
			continue
		}
		block, err := armor.Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		md, err := openpgp.ReadMessage(block.Body, openpgp.EntityList{key}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		inner, err := io.ReadAll(md.UnverifiedBody)
		if err != nil {
			t.Fatal(err)
		}
		return inner
	}
}

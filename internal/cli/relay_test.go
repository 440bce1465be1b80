package cli_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var relayLine = regexp.MustCompile(`SMTP relay: submission (\S+), implicit TLS (\S+)`)

// relayAddrs reads the relay's listeners from the server's output.
func relayAddrs(t *testing.T, out string) (string, string) {
	t.Helper()
	m := relayLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no relay line in the server's output:\n%s", out)
	}
	return m[1], m[2]
}

const relayed = "From: Clinic <reminders@clinic.example>\r\nTo: pat@patient.example\r\nSubject: Relayed reminder\r\n\r\nTomorrow at 9:00.\r\n"

func TestSMTPRelayWithGoAndSwaks(t *testing.T) {
	w := serveWithMail(t, "SEALPOST_SUBMISSION_ADDR=127.0.0.1:0")
	if code, out, errOut := run(t, w.env, "admin", "domain", "add", "clinic.example", "--skip-dns-check"); code != 0 {
		t.Fatalf("domain: %s %s", out, errOut)
	}
	addr, implicit := relayAddrs(t, w.out.String())
	if implicit != "off" {
		t.Errorf("implicit TLS without a certificate: %s", implicit)
	}
	id, secret := w.creds["client_id"], w.creds["client_secret"]

	// Refusals: no AUTH, wrong secret, an unverified From domain.
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	var tpErr *textproto.Error
	if err := c.Mail("reminders@clinic.example"); !errors.As(err, &tpErr) || tpErr.Code/100 != 5 {
		t.Errorf("MAIL without AUTH: %v", err)
	}
	if err := c.Auth(smtp.PlainAuth("", id, "sps_wrong", "127.0.0.1")); !errors.As(err, &tpErr) || tpErr.Code != 535 {
		t.Errorf("wrong secret: %v", err)
	}
	_ = c.Close()

	send := func(raw string) error {
		return smtp.SendMail(addr, smtp.PlainAuth("", id, secret, "127.0.0.1"), "reminders@clinic.example", []string{"pat@patient.example"}, []byte(raw))
	}
	if err := send(strings.Replace(relayed, "clinic.example>", "elsewhere.example>", 1)); !errors.As(err, &tpErr) || tpErr.Code != 550 {
		t.Errorf("unverified From domain: %v", err)
	}
	// Go's net/smtp, with bare LF line endings it should not send but some do.
	if err := send(strings.ReplaceAll(relayed, "\r\n", "\n")); err != nil {
		t.Fatalf("relay with net/smtp: %v", err)
	}
	got := w.waitForSink(t, 1)
	if !strings.Contains(string(got[0].Data), "Subject: Relayed reminder\r\n") || !strings.Contains(string(got[0].Data), "Message-Id:") ||
		!strings.Contains(string(got[0].Data), "a=ed25519-sha256") {
		t.Errorf("relayed message as delivered:\n%s", got[0].Data)
	}

	// swaks, an independent client, with AUTH LOGIN.
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not installed (apt-get install swaks): the relay was tested with Go's client only")
	}
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(swaks, "--server", host, "--port", port, "--auth", "LOGIN", "--auth-user", id, "--auth-password", secret,
		"--from", "reminders@clinic.example", "--to", "pat@patient.example", "--header", "Subject: swaks", "--body", "hello",
		"--h-From", "Clinic <reminders@clinic.example>", "--timeout", "20")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "250 2.0.0 OK: queued") {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	w.waitForSink(t, 2)
}

func TestSMTPRelayOverSTARTTLSAndImplicitTLS(t *testing.T) {
	w := serveWithMail(t, "SEALPOST_SUBMISSION_ADDR=127.0.0.1:0", "SEALPOST_SUBMISSION_TLS_ADDR=127.0.0.1:0", "SEALPOST_HTTP_TLS_DEV=true")
	if code, out, errOut := run(t, w.env, "admin", "domain", "add", "clinic.example", "--skip-dns-check"); code != 0 {
		t.Fatalf("domain: %s %s", out, errOut)
	}
	addr, implicit := relayAddrs(t, w.out.String())
	var dataDir string
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "SEALPOST_DATA_DIR="); ok {
			dataDir = v
		}
	}
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "dev-tls-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	// net/smtp sends PLAIN only to the host it dialled, by name.
	auth := func(host string) smtp.Auth {
		return smtp.PlainAuth("", w.creds["client_id"], w.creds["client_secret"], host)
	}

	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(tlsConf); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	relay(t, c, auth("127.0.0.1"))

	conn, err := tls.Dial("tcp", implicit, tlsConf)
	if err != nil {
		t.Fatalf("implicit TLS: %v", err)
	}
	c, err = smtp.NewClient(conn, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	relay(t, c, auth("localhost"))
	w.waitForSink(t, 2)
}

func relay(t *testing.T, c *smtp.Client, a smtp.Auth) {
	t.Helper()
	defer c.Close()
	if err := c.Auth(a); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("reminders@clinic.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("pat@patient.example"); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Write([]byte(relayed)); err != nil {
		t.Fatal(err)
	}
	if err := wc.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	_ = c.Quit()
}

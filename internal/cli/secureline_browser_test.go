package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// secureLineBrowserWorld is a running server in the default mode
// (forced_tls) with two sinks: the patient's MX offers no STARTTLS at
// all, the clinic's MX does STARTTLS with a certificate the server
// trusts. delivery.tls_policy stays at its default (opportunistic), which
// is what the portal's notices follow when the recipient cannot do
// verified TLS (docs/secureline.md, "At delivery").
type secureLineBrowserWorld struct {
	mailWorld                // sink: the patient's MX (no STARTTLS)
	clinic    *smtptest.Sink // the sender's MX (verified TLS)
}

func serveSecureLineBrowser(t *testing.T) secureLineBrowserWorld {
	t.Helper()
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	patient, err := smtptest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(patient.Close)
	cert, certPEM, err := smtptest.Certificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	clinic, err := smtptest.Start(&cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(clinic.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "sink-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEALPOST_DATA_DIR=" + filepath.Join(dir, "data"), "SEALPOST_DNS_SERVERS=" + dns.Addr,
		"SEALPOST_DELIVERY_ROUTES=patient.example=" + patient.Addr + ",clinic.example=" + clinic.Addr,
		"SEALPOST_DELIVERY_TLS_CA_FILE=" + ca, "SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example",
		"SEALPOST_SUBMISSION_ADDR=off", "SEALPOST_SUBMISSION_TLS_ADDR=off", "SEALPOST_HTTP_PUBLIC_URL=" + portalPublicURL}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	return secureLineBrowserWorld{mailWorld: mailWorld{bootstrapped: bootstrapped{env: env, base: base, creds: creds,
		owner: creds["client_id"] + ":" + creds["client_secret"], api: newAPIClient(t, base)}, dns: dns, sink: patient, out: out},
		clinic: clinic}
}

// waitForDelivered polls a message until its only recipient is delivered.
func waitForDelivered(t *testing.T, w mailWorld, id string) encStatus {
	t.Helper()
	var m encStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m = getEncStatus(t, w, id); m.Recipients[0].State == "delivered" {
			return m
		}
	}
	t.Fatalf("message %s not delivered: %+v", id, m)
	return m
}

// TestSecureLinePHIToThePortalReadAndAnsweredInChromium is issue 5's
// "real tools must agree" portal case through the send path: a message
// with an SSN and an ICD-10 code, to a recipient without keys whose MX
// cannot do verified TLS, goes to the portal under forced TLS; the
// recipient follows the notice's link, signs in with the emailed code,
// reads it and replies, and the reply reaches the sender's MX.
func TestSecureLinePHIToThePortalReadAndAnsweredInChromium(t *testing.T) {
	ctx := chromium(t)
	w := serveSecureLineBrowser(t)
	verifyDomain(t, w.mailWorld, "clinic.example")
	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	const ssn, icd = "521-44-7612", "E11.9"

	msgID := sendJSON(t, w.mailWorld, `{"from":"Riverside Clinic <results@clinic.example>","to":["pat@patient.example"],`+
		`"subject":"Your visit summary","text":"SSN on file: `+ssn+`. Diagnosis: `+icd+` (type 2 diabetes)."}`)

	// Recorded tls at acceptance (TLS is not probed then), delivery finds
	// no STARTTLS at the patient's MX and falls back to the portal.
	m := waitForDelivered(t, w.mailWorld, msgID)
	r := m.Recipients[0]
	if r.RemoteHost != "portal" || !strings.Contains(r.SMTPReply, "delivered to the portal") ||
		r.Encryption == nil || r.Encryption.Method != "portal" {
		t.Fatalf("recipient: %+v", r)
	}
	if !strings.Contains(r.SMTPReply, "does not offer STARTTLS") {
		t.Errorf("fallback reply %q does not name the missing STARTTLS", r.SMTPReply)
	}
	reasons := strings.Join(r.Encryption.Reasons, " | ")
	if !strings.Contains(reasons, "ssn") || !strings.Contains(reasons, "icd10") || strings.Contains(reasons, ssn) ||
		!strings.Contains(reasons, "forced TLS") || r.Encryption.Reasons[len(r.Encryption.Reasons)-1] != r.SMTPReply {
		t.Errorf("reasons: %s", reasons)
	}

	// The notice reaches the patient's MX (in clear: the notice carries no
	// PHI and follows delivery.tls_policy) with a link.
	got := sinkFor(t, w.mailWorld, "pat@patient.example", 1)
	_, text := mailText(t, got[0].Data)
	if got[0].TLS {
		t.Error("the patient's MX offers no STARTTLS, yet the notice came over TLS")
	}
	link := portalLink.FindStringSubmatch(text)
	if link == nil {
		t.Fatalf("no portal link in the notice: %q", text)
	}

	browserDo(t, ctx, "open the link", chromedp.Navigate(w.base+link[1]), chromedp.WaitVisible(id("send-code")))
	browserDo(t, ctx, "ask for a code", chromedp.Click(id("send-code")), chromedp.WaitVisible(id("code")))
	got = sinkFor(t, w.mailWorld, "pat@patient.example", 2)
	_, codeText := mailText(t, got[1].Data)
	code := portalCode.FindStringSubmatch(codeText)
	if code == nil {
		t.Fatalf("no code in the code mail: %q", codeText)
	}
	browserDo(t, ctx, "enter the code", chromedp.SendKeys(id("code"), code[1]), chromedp.Click(id("verify")),
		chromedp.WaitVisible(id("reply-form")))
	if title := browserRun(t, ctx, "subject", chromedp.Text(id("title"))); title != "Your visit summary" {
		t.Errorf("heading %q", title)
	}
	page := browserRun(t, ctx, "page text", chromedp.Evaluate[string](`document.body.innerText`))
	if !strings.Contains(page, ssn) || !strings.Contains(page, icd) {
		t.Errorf("the portal page lacks the message text: %q", page)
	}

	browserDo(t, ctx, "reply", chromedp.SendKeys(id("reply-text"), "Thanks, see you Friday."),
		chromedp.Click(id("send-reply")), chromedp.WaitVisible(id("notice")))

	// The reply reaches the sender's MX, over verified TLS (forced_tls).
	var reply smtptest.Received
	for deadline := time.Now().Add(30 * time.Second); reply.Data == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, c := range w.clinic.Messages() {
			if len(c.Rcpts) == 1 && c.Rcpts[0] == "results@clinic.example" {
				reply = c
			}
		}
	}
	if reply.Data == nil {
		t.Fatal("the reply never reached the sender's MX")
	}
	if _, replyText := mailText(t, reply.Data); !reply.TLS || !strings.Contains(replyText, "see you Friday") {
		t.Errorf("the reply at the sender: tls %v, %q", reply.TLS, replyText)
	}

	// Nothing with the SSN or the code ever reached the patient's MX: it
	// saw exactly the link notice and the code mail.
	for i, p := range w.sink.Messages() {
		if bytes.Contains(p.Data, []byte(ssn)) || bytes.Contains(p.Data, []byte(icd)) ||
			bytes.Contains(p.Data, []byte("diabetes")) || bytes.Contains(p.Data, []byte("visit summary")) {
			t.Errorf("patient MX message %d carries message content", i)
		}
	}
	if n := len(w.sink.Messages()); n != 2 {
		t.Errorf("the patient's MX received %d messages, want 2 (notice, code)", n)
	}
}

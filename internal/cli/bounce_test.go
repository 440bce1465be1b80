package cli_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/smtp"
	"net/textproto"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bounceDSN is a Postfix-shaped DSN (RFC 3464) reporting that rcpt's
// mailbox does not exist.
func bounceDSN(returnPath, rcpt string) string {
	return strings.ReplaceAll(`From: MAILER-DAEMON@mx.patient.example (Mail Delivery System)
To: `+returnPath+`
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.patient.example

Final-Recipient: rfc822; `+rcpt+`
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <`+rcpt+`>: Recipient address rejected:
    User unknown in local recipient table

--b--
`, "\n", "\r\n")
}

// sendToBounceListener talks SMTP to the bounce listener from the null
// reverse-path, as a reporting MTA does.
func sendToBounceListener(addr, rcpt, data string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(""); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

var returnPathRE = regexp.MustCompile(`^b\+[a-z2-7]+@bounces\.clinic\.example$`)

func TestAnAsynchronousBounceThroughTheRealServer(t *testing.T) {
	bounceAddr := freeAddr(t)
	w := serveWithMail(t, "SEALPOST_BOUNCE_DOMAIN=bounces.clinic.example", "SEALPOST_BOUNCE_ADDR="+bounceAddr)
	api, owner := w.api, w.owner

	// A verified sending domain.
	status, _, body := api.call("POST", "/v1/domains", owner, "application/json", `{"domain":"clinic.example"}`)
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

	// The message is delivered with a signed return path.
	status, _, body = api.call("POST", "/v1/messages", owner, "application/json",
		`{"from":"Clinic <reminders@clinic.example>","to":["pat@patient.example"],"subject":"Your appointment","text":"Tomorrow at 9:00."}`)
	var acc struct {
		ID string `json:"id"`
	}
	if status != 202 || json.Unmarshal(body, &acc) != nil {
		t.Fatalf("send: %d %s", status, body)
	}
	got := w.waitForSink(t, 1)
	returnPath := got[0].From
	if !returnPathRE.MatchString(returnPath) {
		t.Fatalf("MAIL FROM %q, want b+<token>@bounces.clinic.example", returnPath)
	}
	type recipient struct {
		State     string `json:"state"`
		SMTPCode  int    `json:"smtp_code"`
		SMTPReply string `json:"smtp_reply"`
	}
	var m struct {
		Status     string      `json:"status"`
		Recipients []recipient `json:"recipients"`
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			_, _, body := api.call("GET", "/v1/messages/"+acc.ID, owner, "", "")
			if json.Unmarshal(body, &m) == nil && m.Status == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("message status %q, want %q", m.Status, want)
	}
	waitFor("delivered")

	// The listener refuses addresses it did not hand out.
	forged := returnPath[:2] + strings.Map(func(r rune) rune {
		if r == 'a' {
			return 'b'
		}
		return r
	}, returnPath[2:])
	if forged == returnPath {
		forged = "b+aaaa@bounces.clinic.example"
	}
	for _, rcpt := range []string{forged, "postmaster@bounces.clinic.example", "pat@patient.example"} {
		var te *textproto.Error
		if err := sendToBounceListener(bounceAddr, rcpt, bounceDSN(rcpt, "pat@patient.example")); !errors.As(err, &te) || te.Code != 550 {
			t.Errorf("RCPT %s: %v, want 550", rcpt, err)
		}
	}

	// The remote's later DSN bounces the delivered recipient...
	if err := sendToBounceListener(bounceAddr, returnPath, bounceDSN(returnPath, "pat@patient.example")); err != nil {
		t.Fatalf("send the DSN: %v", err)
	}
	waitFor("bounced")
	if r := m.Recipients[0]; r.State != "bounced" || r.SMTPCode != 550 || !strings.Contains(r.SMTPReply, "5.1.1") {
		t.Errorf("recipient after the DSN: %+v", r)
	}
	// ...and suppresses the address.
	status, _, body = api.call("GET", "/v1/suppressions", owner, "", "")
	if status != 200 || !strings.Contains(string(body), `"pat@patient.example"`) || !strings.Contains(string(body), `"hard_bounce"`) {
		t.Errorf("suppressions: %d %s", status, body)
	}
	// Two recipients at one domain share a transaction: the token names
	// the message only (44 characters, not 47), and the DSN's
	// Final-Recipient picks the recipient.
	status, _, body = api.call("POST", "/v1/messages", owner, "application/json",
		`{"from":"reminders@clinic.example","to":["kim@patient.example","lee@patient.example"],"subject":"Results","text":"Ready."}`)
	if status != 202 || json.Unmarshal(body, &acc) != nil {
		t.Fatalf("send: %d %s", status, body)
	}
	got = w.waitForSink(t, 2)
	shared := got[1].From
	if local, _, _ := strings.Cut(shared, "@"); !returnPathRE.MatchString(shared) || len(local) != 44 || len(got[1].Rcpts) != 2 {
		t.Fatalf("MAIL FROM %q for %v, want a message-only token", shared, got[1].Rcpts)
	}
	if local, _, _ := strings.Cut(returnPath, "@"); len(local) != 47 {
		t.Errorf("the single-recipient token %q should carry the recipient", returnPath)
	}
	waitFor("delivered")
	if err := sendToBounceListener(bounceAddr, shared, bounceDSN(shared, "lee@patient.example")); err != nil {
		t.Fatalf("send the DSN: %v", err)
	}
	waitFor("bounced") // the summary shows the worst state
	if m.Recipients[0].State != "delivered" || m.Recipients[1].State != "bounced" {
		t.Errorf("recipients after lee's DSN: %+v", m.Recipients)
	}

	// The listener's results are in the metrics.
	resp, err := http.Get(w.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`sealpost_bounce_reports_total{result="bounced"} 2`, `sealpost_bounce_reports_total{result="refused"} 3`} {
		if !strings.Contains(string(metrics), line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

package cli_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	gomail "github.com/emersion/go-message/mail"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// portalPublicURL is what the server puts in portal links; the test
// swaps it for the address it listens on.
const portalPublicURL = "https://portal.clinic.example"

// serveWithPortal is serveWithMail whose sink also takes the clinic's
// mail (replies go back to the sender) and whose links have a public URL.
func serveWithPortal(t *testing.T) mailWorld {
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
		"SEALPOST_DELIVERY_TLS_POLICY=required", "SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example",
		"SEALPOST_SUBMISSION_ADDR=off", "SEALPOST_SUBMISSION_TLS_ADDR=off", "SEALPOST_HTTP_PUBLIC_URL=" + portalPublicURL}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	return mailWorld{bootstrapped: bootstrapped{env: env, base: base, creds: creds, owner: creds["client_id"] + ":" + creds["client_secret"],
		api: newAPIClient(t, base)}, dns: dns, sink: sink, out: out}
}

// verifyDomain adds and verifies a sending domain through the API.
func verifyDomain(t *testing.T, w mailWorld, domain string) {
	t.Helper()
	status, _, body := w.api.call("POST", "/v1/domains", w.owner, "application/json", `{"domain":"`+domain+`"}`)
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
	if status, _, body := w.api.call("POST", "/v1/domains/"+domain+"/verify", w.owner, "", ""); status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
}

// mailText returns a received message's decoded text/plain body and its
// subject.
func mailText(t *testing.T, raw []byte) (subject, text string) {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ = r.Header.Subject()
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*gomail.InlineHeader); ok {
			if mt, _, _ := h.ContentType(); mt == "text/plain" && text == "" {
				b, _ := io.ReadAll(p.Body)
				text = string(b)
			}
		}
	}
	return subject, text
}

var (
	portalLink = regexp.MustCompile(regexp.QuoteMeta(portalPublicURL) + `(/p/[A-Za-z0-9_-]+)`)
	portalCode = regexp.MustCompile(`\b(\d{6})\b`)
)

func TestPortalMessageReadAndAnsweredInChromium(t *testing.T) {
	ctx := chromium(t)
	w := serveWithPortal(t)
	verifyDomain(t, w, "clinic.example")
	id := func(s string) chromedp.ID { return chromedp.ID(s) }

	// The account brands its portal, then deposits a message with PHI
	// and a file.
	if status, _, out := w.api.call("PUT", "/v1/portal-settings", w.owner, "application/json",
		`{"display_name":"Riverside Clinic","logo_url":"","primary_color":"#1d4e89"}`); status != 200 {
		t.Fatalf("portal settings: %d %s", status, out)
	}
	pdf := "%PDF-1.7 glucose 140 mg/dL"
	body := `{"from":"Riverside Clinic <results@clinic.example>","to":"pat@patient.example","subject":"Your lab results",` +
		`"text":"Your SSN on file: 078-05-1120. HbA1c 6.1%.","html":"<p>Your SSN on file: <b>078-05-1120</b>.</p><script>document.body.setAttribute('data-ran','yes')</script>",` +
		`"attachments":[{"filename":"results.pdf","content_type":"application/pdf","content":"` + base64.StdEncoding.EncodeToString([]byte(pdf)) + `"}]}`
	status, _, out := w.api.call("POST", "/v1/portal-messages", w.owner, "application/json", body)
	var pm struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if status != 202 || json.Unmarshal(out, &pm) != nil || pm.ID == "" {
		t.Fatalf("deposit: %d %s", status, out)
	}

	// The notice reaches the patient through the real pipeline, without PHI.
	got := w.waitForSink(t, 1)
	subject, text := mailText(t, got[0].Data)
	if got[0].Rcpts[0] != "pat@patient.example" || subject != "You have a secure message from Riverside Clinic" {
		t.Fatalf("notice: to %v, subject %q", got[0].Rcpts, subject)
	}
	for _, phi := range []string{"078-05-1120", "lab results", "HbA1c", "results.pdf"} {
		if strings.Contains(string(got[0].Data), phi) {
			t.Errorf("the notice carries %q", phi)
		}
	}
	m := portalLink.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no portal link in the notice: %q", text)
	}
	link := w.base + m[1]

	// Open the link: the page offers to email a code to the masked address.
	browserDo(t, ctx, "open the link", chromedp.Navigate(link), chromedp.WaitVisible(id("send-code")))
	if masked := browserRun(t, ctx, "masked address", chromedp.Text(id("masked"))); masked != "p***@patient.example" {
		t.Errorf("masked address %q", masked)
	}
	if lang := browserRun(t, ctx, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "en" {
		t.Errorf("lang %q", lang)
	}
	browserDo(t, ctx, "ask for a code", chromedp.Click(id("send-code")), chromedp.WaitVisible(id("code")))
	labelled := browserRun(t, ctx, "code label", chromedp.Evaluate[bool](`document.querySelector('label[for=code]').control.id === 'code'`))
	if !labelled {
		t.Error("the code field is not labelled")
	}
	got = w.waitForSink(t, 2)
	_, codeText := mailText(t, got[1].Data)
	cm := portalCode.FindStringSubmatch(codeText)
	if cm == nil || strings.Contains(string(got[1].Data), "078-05-1120") {
		t.Fatalf("code mail: %q", codeText)
	}

	// A wrong code is refused; the right one opens the message.
	wrong := "000000"
	if cm[1] == wrong {
		wrong = "111111"
	}
	browserDo(t, ctx, "wrong code", chromedp.SendKeys(id("code"), wrong), chromedp.Click(id("verify")), chromedp.WaitVisible(id("error")))
	browserDo(t, ctx, "right code", chromedp.SendKeys(id("code"), cm[1]), chromedp.Click(id("verify")),
		chromedp.WaitVisible(id("reply-form")))
	if title := browserRun(t, ctx, "subject", chromedp.Text(id("title"))); title != "Your lab results" {
		t.Errorf("heading %q", title)
	}
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == portal.CookieName {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("portal cookie: %+v", session)
	}
	// The sender's HTML is in a sandboxed frame: shown, its script never run.
	framed := browserRun(t, ctx, "frame", chromedp.Poll[string](`(() => { const f = document.getElementById('body-frame');
		return f && f.hasAttribute('sandbox') ? f.getAttribute('src') : '' })()`))
	if !strings.HasSuffix(framed, "/body") {
		t.Errorf("body frame src %q", framed)
	}
	// Chrome isolates the sandboxed (opaque-origin) frame in a process of
	// its own: attach to it as a target to look inside.
	var frameTarget target.ID
	for deadline := time.Now().Add(10 * time.Second); frameTarget == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if info.Type == "iframe" && strings.HasSuffix(info.URL, "/body") {
				frameTarget = info.TargetID
			}
		}
	}
	if frameTarget == "" {
		t.Fatal("the body frame is not a target of its own (not isolated?)")
	}
	frameCtx, cancelFrame := chromedp.NewContext(ctx, chromedp.WithTargetID(frameTarget))
	defer cancelFrame()
	if ssn := browserRun(t, frameCtx, "framed body", chromedp.Text(chromedp.CSS("b"))); ssn != "078-05-1120" {
		t.Errorf("the framed body shows %q", ssn)
	}
	if ran := browserRun(t, frameCtx, "script marker", chromedp.AttributeValue(chromedp.CSS("body"), "data-ran")); ran.Exists {
		t.Error("the sender's script ran")
	}

	// Download the attachment.
	downloads := t.TempDir()
	if _, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	browserDo(t, ctx, "download", chromedp.Click(id("attachment-0")))
	var file []byte
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(downloads, "results.pdf")); err == nil && len(b) == len(pdf) {
			file = b
			break
		}
	}
	if string(file) != pdf {
		t.Errorf("downloaded %q", file)
	}

	// Reply: the reply reaches the sender.
	browserDo(t, ctx, "reply", chromedp.SendKeys(id("reply-text"), "Thank you. Can we discuss the A1c on Friday?"),
		chromedp.Click(id("send-reply")), chromedp.WaitVisible(id("notice")))
	got = w.waitForSink(t, 3)
	replySubject, replyText := mailText(t, got[2].Data)
	if got[2].Rcpts[0] != "results@clinic.example" || !strings.Contains(replyText, "discuss the A1c on Friday") ||
		!strings.Contains(replySubject, "pat@patient.example") {
		t.Errorf("the reply at the sender: to %v, %q %q", got[2].Rcpts, replySubject, replyText)
	}

	// The sender sees it read and answered; signing out ends the session.
	status, _, out = w.api.call("GET", "/v1/portal-messages/"+pm.ID, w.owner, "", "")
	var st struct {
		State   string `json:"state"`
		Replies int    `json:"replies"`
	}
	if status != 200 || json.Unmarshal(out, &st) != nil || st.State != "viewed" || st.Replies != 1 {
		t.Errorf("status: %d %s", status, out)
	}
	browserDo(t, ctx, "sign out", chromedp.Click(id("logout")), chromedp.WaitVisible(id("send-code")))

	// Recalled, the link says so.
	if status, _, out := w.api.call("POST", "/v1/portal-messages/"+pm.ID+"/recall", w.owner, "", ""); status != 200 {
		t.Fatalf("recall: %d %s", status, out)
	}
	browserDo(t, ctx, "recalled link", chromedp.Navigate(link), chromedp.WaitVisible(id("explanation")))
	if h := browserRun(t, ctx, "recalled heading", chromedp.Text(id("title"))); h != "This message was withdrawn" {
		t.Errorf("recalled page: %q", h)
	}
}

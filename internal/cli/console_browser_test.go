package cli_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sealpost/sealpost/internal/console"
)

// chromium starts a headless Chromium for the test, or skips it with the
// reason when none is installed (.ci/run installs the Debian package).
func chromium(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("browser test: no chromium on PATH (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("ignore-certificate-errors", true), // the dev certificate is self-signed
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Skipf("browser test: chromium does not start: %v", err)
	}
	return ctx
}

// browserRun runs an action and returns its value, failing the test with
// the step's name and the page's address.
func browserRun[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", step, loc, err)
	}
	return v
}

func browserDo(t *testing.T, ctx context.Context, step string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browserRun(t, ctx, step, chromedp.Steps(steps...))
}

func TestConsoleSignInWithTwoFactorInChromium(t *testing.T) {
	ctx := chromium(t)
	base, out, _ := startServe(t, []string{"SEALPOST_DATA_DIR=" + t.TempDir()}, "--dev-tls")
	base = strings.Replace(base, "http://", "https://", 1)
	creds := parseCreds(out.String())
	email, password := creds["owner_email"], creds["owner_password"]
	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	signIn := func(pw string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.WaitVisible(id("email")),
			chromedp.SendKeys(id("email"), email),
			chromedp.SendKeys(id("password"), pw),
			chromedp.Click(id("sign-in")),
		)
	}

	// Unauthenticated visitors land on the sign-in form, whose fields are
	// labelled for assistive technology.
	browserDo(t, ctx, "open the console", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(id("email")))
	if loc := browserRun(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/console/login") {
		t.Fatalf("landing: %s", loc)
	}
	labelled := browserRun(t, ctx, "labels", chromedp.Evaluate[bool](`document.querySelector('label[for=email]').control.id === 'email' &&
		document.querySelector('label[for=password]').control.id === 'password'`))
	if !labelled {
		t.Fatal("the sign-in fields are not labelled")
	}

	browserDo(t, ctx, "wrong password", signIn("not-the-password"), chromedp.WaitVisible(id("error")))
	if msg := browserRun(t, ctx, "error text", chromedp.Text(id("error"))); msg != "Invalid email or password." {
		t.Fatalf("error shown: %q", msg)
	}

	browserDo(t, ctx, "sign in", signIn(password), chromedp.WaitVisible(id("who")))
	if who := browserRun(t, ctx, "who", chromedp.Text(id("who"))); who != email {
		t.Fatalf("signed in as %q", who)
	}

	// The cookie is out of reach of scripts and bound to this site.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == console.CookieName {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie: %+v", session)
	}
	if visible := browserRun(t, ctx, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(visible, console.CookieName) {
		t.Fatal("the session cookie is readable by scripts")
	}

	// Enrol: the QR code renders (the CSP allows it), the key is shown,
	// and a code from it turns two-factor on and reveals recovery codes.
	browserDo(t, ctx, "open enrolment", chromedp.Click(chromedp.CSS(`a[href="/console/mfa"]`)), chromedp.WaitVisible(id("qr")))
	qrWidth := browserRun(t, ctx, "QR code", chromedp.Poll[int](`document.getElementById('qr').complete && document.getElementById('qr').naturalWidth`))
	secret := browserRun(t, ctx, "secret", chromedp.Text(id("secret")))
	if qrWidth == 0 || secret == "" {
		t.Fatalf("QR width %d, secret %q", qrWidth, secret)
	}
	confirmCode := totpAt(t, secret, time.Now())
	browserDo(t, ctx, "confirm enrolment", chromedp.SendKeys(id("code"), confirmCode), chromedp.Click(id("confirm")),
		chromedp.WaitVisible(id("recovery-codes")))
	recovery := browserRun(t, ctx, "recovery codes",
		chromedp.Evaluate[[]string](`[...document.querySelectorAll('#recovery-codes code')].map(c => c.textContent)`))
	if len(recovery) != 10 {
		t.Fatalf("recovery codes: %v", recovery)
	}
	browserDo(t, ctx, "back to the overview", chromedp.Click(id("continue")), chromedp.WaitVisible(id("mfa")))
	if state := browserRun(t, ctx, "two-factor state", chromedp.Text(id("mfa"))); state != "on" {
		t.Fatalf("two-factor shown as %q", state)
	}

	// Sign out, sign in again: the second factor is asked for, the code
	// already used is refused, a recovery code is accepted.
	browserDo(t, ctx, "sign out", chromedp.Click(id("logout")), chromedp.WaitVisible(id("email")))
	browserDo(t, ctx, "password again", signIn(password), chromedp.WaitVisible(id("code")))
	browserDo(t, ctx, "reused code", chromedp.SendKeys(id("code"), confirmCode), chromedp.Click(id("verify")),
		chromedp.WaitVisible(id("error")))
	if msg := browserRun(t, ctx, "error text", chromedp.Text(id("error"))); !strings.Contains(msg, "not valid") {
		t.Fatalf("reused code: %q", msg)
	}
	browserDo(t, ctx, "recovery code", chromedp.SendKeys(id("code"), recovery[0]),
		chromedp.Click(id("verify")), chromedp.WaitVisible(id("who")))

	// The sessions page lists this session; signing out everywhere ends it.
	browserDo(t, ctx, "sessions", chromedp.Click(chromedp.CSS(`a[href="/console/sessions"]`)), chromedp.WaitVisible(id("sessions")))
	if rows := browserRun(t, ctx, "session rows", chromedp.Evaluate[int](`document.querySelectorAll('#sessions tbody tr').length`)); rows != 1 {
		t.Fatalf("sessions listed: %d", rows)
	}
	browserDo(t, ctx, "sign out everywhere", chromedp.Click(id("revoke-all")), chromedp.WaitVisible(id("email")),
		chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(id("email")))
}

func totpAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

package console_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/console"
	"github.com/sealpost/sealpost/internal/login"
	"github.com/sealpost/sealpost/internal/mfa"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

type harness struct {
	t       *testing.T
	ts      *httptest.Server
	c       *console.Console
	admin   *account.Admin
	system  account.Actor
	creds   account.Credentials
	log     *audit.Log
	mu      sync.Mutex
	clock   time.Time
	ownerID string
}

func newHarness(t *testing.T, s *store.Store) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, clock: time.Now()}
	accts := account.NewStore(s)
	h.log = audit.New(s, audit.Options{})
	var err error
	h.creds, _, err = account.Bootstrap(ctx, s, accts, h.log, account.BootstrapOptions{AccountName: "Clinic", OwnerEmail: "owner@clinic.example"})
	if err != nil {
		t.Fatal(err)
	}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	factors := mfa.New(s, vault.New(s, mk, vault.Options{}), "Sealpost")
	factors.Now = h.now
	logins := login.New(s, factors, h.log)
	logins.Now = h.now
	sessions := console.NewSessions(s, 15*time.Minute, 12*time.Hour)
	sessions.Now = h.now
	h.c, err = console.New(console.Deps{Sessions: sessions, Logins: logins, MFA: factors, Policies: accts, Accounts: accts,
		Audit: h.log, Throttle: auth.NewThrottle(20, time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, handler := range h.c.Routes() {
		mux.Handle(pattern, handler)
	}
	h.ts = httptest.NewTLSServer(mux)
	t.Cleanup(h.ts.Close)
	h.admin = account.NewAdmin(s, accts, h.log)
	h.system = account.Actor{Principal: auth.Principal{AccountID: h.creds.AccountID, ActorKind: auth.ActorSystem, ActorID: "test",
		Scopes: auth.AllScopes()}}
	users, err := h.admin.ListUsers(ctx, h.system)
	if err != nil {
		t.Fatal(err)
	}
	h.ownerID = users[0].ID
	return h
}

func (h *harness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clock
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock = h.clock.Add(d)
}

// browser is a client with its own cookie jar.
type browser struct {
	h    *harness
	http *http.Client
	page string // last page body
	path string // path of the last page
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, http: &http.Client{Transport: h.ts.Client().Transport, Jar: jar}}
}

func (b *browser) do(req *http.Request) int {
	b.h.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.page, b.path = string(body), resp.Request.URL.Path
	return resp.StatusCode
}

func (b *browser) get(path string) int {
	req, _ := http.NewRequest("GET", b.h.ts.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) int {
	req, _ := http.NewRequest("POST", b.h.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf() string {
	m := csrfField.FindStringSubmatch(b.page)
	if m == nil {
		b.h.t.Fatalf("no CSRF field on %s", b.path)
	}
	return m[1]
}

func (b *browser) signIn(email, password string) int {
	return b.post("/console/login", url.Values{"email": {email}, "password": {password}})
}

func (b *browser) cookie() string {
	u, _ := url.Parse(b.h.ts.URL)
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == console.CookieName {
			return c.Value
		}
	}
	return ""
}

func (b *browser) expectAt(path, contains string) {
	b.h.t.Helper()
	if b.path != path || !strings.Contains(b.page, contains) {
		b.h.t.Fatalf("at %s, want %s showing %q; page:\n%.600s", b.path, path, contains, b.page)
	}
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var secretText = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)

// enrol turns on TOTP for a signed-in browser and returns the secret and
// the recovery codes.
func (b *browser) enrol() (string, []string) {
	t := b.h.t
	t.Helper()
	if b.get("/console/mfa") != 200 {
		t.Fatalf("enrol page: %s", b.page)
	}
	m := secretText.FindStringSubmatch(b.page)
	if m == nil || !strings.Contains(b.page, `src="data:image/png;base64,`) {
		t.Fatalf("enrol page lacks QR code or key:\n%s", b.page)
	}
	if status := b.post("/console/mfa", url.Values{"csrf": {b.csrf()}, "code": {totpCode(t, m[1], b.h.now())}}); status != 200 {
		t.Fatalf("confirm: %d %s", status, b.page)
	}
	codes := regexp.MustCompile(`<li><code>([A-Z2-7-]+)</code></li>`).FindAllStringSubmatch(b.page, -1)
	if len(codes) != mfa.RecoveryCodes {
		t.Fatalf("recovery codes shown: %d", len(codes))
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = c[1]
	}
	return m[1], out
}

func TestSignInAndTheSessionCookie(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := newHarness(t, s)
		b := h.browser()
		b.get("/console/")
		b.expectAt("/console/login", "Sign in")

		if status := b.signIn(h.creds.OwnerEmail, "wrong"); status != 401 {
			t.Fatalf("wrong password: %d", status)
		}
		wrong := b.page
		b.signIn("nobody@clinic.example", "wrong")
		if b.page != wrong || !strings.Contains(wrong, "Invalid email or password.") {
			t.Errorf("unknown email and wrong password answer differently")
		}
		b.signIn("' OR 1=1 --\x00", "x")
		if b.page != wrong {
			t.Errorf("malformed email answers differently")
		}

		// The cookie's attributes, seen on the raw response.
		raw := &http.Client{Transport: h.ts.Client().Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := raw.PostForm(h.ts.URL+"/console/login", url.Values{"email": {h.creds.OwnerEmail}, "password": {h.creds.OwnerPassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		set := resp.Header.Get("Set-Cookie")
		for _, attr := range []string{console.CookieName + "=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(set, attr) {
				t.Errorf("Set-Cookie %q lacks %s", set, attr)
			}
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
		}

		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		b.expectAt("/console/", h.creds.OwnerEmail)
		if !strings.Contains(b.page, `id="account">Clinic<`) || !strings.Contains(b.page, `id="role">owner<`) {
			t.Errorf("overview lacks account or role")
		}

		// The same session on the API: reads freely, writes with the CSRF
		// header only.
		csrf := b.csrf()
		call := func(method, token string) error {
			r := httptest.NewRequest(method, "/v1/users", nil)
			r.AddCookie(&http.Cookie{Name: console.CookieName, Value: b.cookie()})
			if token != "" {
				r.Header.Set("X-CSRF-Token", token)
			}
			p, err := h.c.Verify(r)
			if err == nil && (p.ActorID != h.ownerID || p.ActorKind != auth.ActorUser || !p.Has(auth.ScopeAdmin)) {
				t.Errorf("principal %+v", p)
			}
			return err
		}
		if err := call("GET", ""); err != nil {
			t.Errorf("GET with the cookie: %v", err)
		}
		if err := call("POST", ""); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("POST without X-CSRF-Token: %v", err)
		}
		if err := call("POST", "forged"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("POST with a wrong X-CSRF-Token: %v", err)
		}
		if err := call("POST", csrf); err != nil {
			t.Errorf("POST with X-CSRF-Token: %v", err)
		}
		r := httptest.NewRequest("GET", "/v1/users", nil)
		if _, err := h.c.Verify(r); !errors.Is(err, auth.ErrNoCredentials) {
			t.Errorf("no cookie: %v", err)
		}
	})
}

func TestTwoFactorEnrolmentAndSignIn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := newHarness(t, s)
		b := h.browser()
		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		secret, recovery := b.enrol()
		confirmCode := totpCode(t, secret, h.now())

		b.get("/console/")
		b.post("/console/logout", url.Values{"csrf": {b.csrf()}})
		b.expectAt("/console/login", "Sign in")

		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		b.expectAt("/console/login/mfa", "authenticator")
		pending := b.cookie()
		// Nothing but the code page is reachable yet.
		b.get("/console/sessions")
		b.expectAt("/console/login/mfa", "authenticator")

		// The code that confirmed the enrolment was spent then.
		if status := b.post("/console/login/mfa", url.Values{"csrf": {b.csrf()}, "code": {confirmCode}}); status != 401 {
			t.Fatalf("reused code: %d", status)
		}
		if status := b.post("/console/login/mfa", url.Values{"code": {recovery[0]}}); status != 403 {
			t.Fatalf("code without CSRF token: %d", status)
		}
		b.get("/console/login/mfa")
		b.post("/console/login/mfa", url.Values{"csrf": {b.csrf()}, "code": {recovery[0]}})
		b.expectAt("/console/", "Overview")
		if b.cookie() == pending || b.cookie() == "" {
			t.Error("the session token was not renewed when the second factor passed")
		}

		// A later code of the authenticator works once.
		b.post("/console/logout", url.Values{"csrf": {b.csrf()}})
		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		h.advance(30 * time.Second)
		next := totpCode(t, secret, h.now())
		b.post("/console/login/mfa", url.Values{"csrf": {b.csrf()}, "code": {next}})
		b.expectAt("/console/", "Overview")
		other := h.browser()
		other.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		if status := other.post("/console/login/mfa", url.Values{"csrf": {other.csrf()}, "code": {next}}); status != 401 {
			t.Errorf("the same code in a second browser: %d", status)
		}
		if status := other.post("/console/login/mfa", url.Values{"csrf": {other.csrf()}, "code": {recovery[0]}}); status != 401 {
			t.Errorf("a used recovery code: %d", status)
		}

		page, err := h.log.List(context.Background(), h.creds.AccountID, audit.Query{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range page.Events {
			seen[e.Action+"/"+e.Outcome] = true
		}
		for _, want := range []string{"login.succeeded/success", "login.failed/failure", "mfa.enrolled/success",
			"mfa.verified/success", "console.logout/success"} {
			if !seen[want] {
				t.Errorf("no %s audit event", want)
			}
		}
	})
}

func TestForcedEnrolment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := newHarness(t, s)
		p := auth.DefaultPolicy()
		p.MFARequired = true
		if err := h.admin.UpdatePolicy(context.Background(), h.system, "", p); err != nil {
			t.Fatal(err)
		}
		b := h.browser()
		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		b.expectAt("/console/mfa", "requires two-factor")
		for _, path := range []string{"/console/", "/console/sessions"} {
			b.get(path)
			b.expectAt("/console/mfa", "requires two-factor")
		}
		r := httptest.NewRequest("GET", "/v1/users", nil)
		r.AddCookie(&http.Cookie{Name: console.CookieName, Value: b.cookie()})
		if _, err := h.c.Verify(r); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("API with a session that has not enrolled: %v", err)
		}
		b.enrol()
		b.get("/console/")
		b.expectAt("/console/", "Overview")
	})
}

func TestSessionsEndOnIdleAbsoluteRevocationAndDisable(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := newHarness(t, s)
		a, b := h.browser(), h.browser()
		a.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)

		a.get("/console/sessions")
		if n := strings.Count(a.page, "<tr>"); n != 3 { // header row and two sessions
			t.Fatalf("sessions listed: %d rows", n)
		}
		id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(a.page)
		if id == nil {
			t.Fatal("no revoke form for the other session")
		}
		a.post("/console/sessions/revoke", url.Values{"csrf": {a.csrf()}, "id": {id[1]}})
		a.expectAt("/console/sessions", "signed out")
		b.get("/console/")
		b.expectAt("/console/login", "Sign in")

		// Idle: 14 minutes between requests keep it alive; 15 end it.
		for range 3 {
			h.advance(14 * time.Minute)
			a.get("/console/")
			a.expectAt("/console/", "Overview")
		}
		h.advance(15 * time.Minute)
		a.get("/console/")
		a.expectAt("/console/login", "Sign in")

		// Absolute: however busy, 12 hours after sign-in it is over.
		a.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		for elapsed := time.Duration(0); elapsed < 12*time.Hour-10*time.Minute; elapsed += 10 * time.Minute {
			h.advance(10 * time.Minute)
			a.get("/console/")
			a.expectAt("/console/", "Overview")
		}
		h.advance(10 * time.Minute)
		a.get("/console/")
		a.expectAt("/console/login", "Sign in")

		// Sign out everywhere.
		a.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		a.get("/console/sessions")
		a.post("/console/sessions/revoke-all", url.Values{"csrf": {a.csrf()}})
		a.expectAt("/console/login", "Sign in")
		b.get("/console/")
		b.expectAt("/console/login", "Sign in")

		// A disabled user's session ends at the next request.
		nurse, err := h.admin.CreateUser(context.Background(), h.system, "nurse@clinic.example", account.RoleSender)
		if err != nil {
			t.Fatal(err)
		}
		a.signIn(nurse.Email, nurse.Password)
		a.expectAt("/console/", "sender")
		disabled := true
		if _, err := h.admin.UpdateUser(context.Background(), h.system, nurse.ID, account.UserChange{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		a.get("/console/")
		a.expectAt("/console/login", "Sign in")
	})
}

func TestFormsRefuseForgeries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := newHarness(t, s)
		b := h.browser()
		b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		good := b.csrf()
		cases := []struct {
			name, path, csrf, origin string
			want                     int
		}{
			{"logout without token", "/console/logout", "", "", 403},
			{"revoke-all with a forged token", "/console/sessions/revoke-all", "forged", "", 403},
			{"revoke-all from another origin", "/console/sessions/revoke-all", good, "https://evil.example", 403},
			{"sign-in from another origin", "/console/login", "", "https://evil.example", 403},
		}
		for _, c := range cases {
			req, _ := http.NewRequest("POST", h.ts.URL+c.path, strings.NewReader(url.Values{"csrf": {c.csrf},
				"email": {h.creds.OwnerEmail}, "password": {h.creds.OwnerPassword}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
				req.Header.Set("Sec-Fetch-Site", "cross-site")
			}
			if status := b.do(req); status != c.want {
				t.Errorf("%s: %d, want %d", c.name, status, c.want)
			}
		}
		b.get("/console/")
		b.expectAt("/console/", "Overview") // still signed in: nothing forged took effect
	})
}

func TestRepeatedFailedSignInsAreThrottled(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := newHarness(t, s)
		b := h.browser()
		for i := range 20 {
			if status := b.signIn("nobody@clinic.example", "guess"); status != 401 {
				t.Fatalf("attempt %d: %d", i+1, status)
			}
		}
		if status := b.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword); status != 429 || !strings.Contains(b.page, "Too many failed attempts") {
			t.Fatalf("after 20 failures: %d", status)
		}
	})
}

func TestSweepDeletesEndedSessions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := newHarness(t, s)
		ended, live := h.browser(), h.browser()
		ended.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		ended.post("/console/logout", url.Values{"csrf": {ended.csrf()}})
		h.advance(25 * time.Hour)
		live.signIn(h.creds.OwnerEmail, h.creds.OwnerPassword)
		sessions := console.NewSessions(s, 15*time.Minute, 12*time.Hour)
		sessions.Now = h.now
		n, err := sessions.Sweep(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("swept %d (%v), want the session signed out a day ago only", n, err)
		}
		live.get("/console/")
		live.expectAt("/console/", "Overview")
	})
}

package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/login"
	"github.com/sealpost/sealpost/internal/mfa"
	"github.com/sealpost/sealpost/internal/oauth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

// passwordFixture is an account with the password grant on, a
// first-party client, a sender user, and a token endpoint.
type passwordFixture struct {
	t        *testing.T
	db       *store.Store
	srv      *oauth.Server
	ts       *httptest.Server
	admin    *account.Admin
	system   account.Actor
	creds    account.Credentials
	app      account.NewClient // first-party
	user     account.NewUser
	factors  *mfa.Manager
	clock    time.Time
	clockMu  sync.Mutex
	accounts *account.Store
}

func newPasswordFixture(t *testing.T, s *store.Store) *passwordFixture {
	t.Helper()
	ctx := context.Background()
	f := &passwordFixture{t: t, db: s, accounts: account.NewStore(s), clock: time.Now()}
	log := audit.New(s, audit.Options{})
	var err error
	f.creds, _, err = account.Bootstrap(ctx, s, f.accounts, log, account.BootstrapOptions{AccountName: "A", OwnerEmail: "owner@a.example"})
	if err != nil {
		t.Fatal(err)
	}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	f.factors = mfa.New(s, vault.New(s, mk, vault.Options{}), "Sealpost")
	f.factors.Now = f.now
	logins := login.New(s, f.factors, log)
	f.srv, err = oauth.New(ctx, oauth.Deps{DB: s, Master: mk, Clients: f.accounts, Policies: f.accounts, Users: f.accounts,
		Logins: logins, Audit: log, Throttle: auth.NewThrottle(1000, time.Minute), Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", f.srv.Token)
	mux.HandleFunc("POST /oauth2/revoke", f.srv.Revoke)
	f.ts = httptest.NewServer(mux)
	t.Cleanup(f.ts.Close)

	f.admin = account.NewAdmin(s, f.accounts, log)
	f.system = account.Actor{Principal: auth.Principal{AccountID: f.creds.AccountID, ActorKind: auth.ActorSystem, ActorID: "test",
		Scopes: auth.AllScopes()}}
	if f.app, err = f.admin.CreateClient(ctx, f.system, account.ClientSpec{Name: "portal", Role: account.RoleAdmin, FirstParty: true}); err != nil {
		t.Fatal(err)
	}
	if f.user, err = f.admin.CreateUser(ctx, f.system, "nurse@a.example", account.RoleSender); err != nil {
		t.Fatal(err)
	}
	f.setPolicy(true, false)
	return f
}

func (f *passwordFixture) now() time.Time {
	f.clockMu.Lock()
	defer f.clockMu.Unlock()
	return f.clock
}

func (f *passwordFixture) advance(d time.Duration) {
	f.clockMu.Lock()
	defer f.clockMu.Unlock()
	f.clock = f.clock.Add(d)
}

func (f *passwordFixture) setPolicy(passwordGrant, mfaRequired bool) {
	p := auth.DefaultPolicy()
	p.AllowPasswordGrant, p.MFARequired = passwordGrant, mfaRequired
	if err := f.admin.UpdatePolicy(context.Background(), f.system, "", p); err != nil {
		f.t.Fatal(err)
	}
}

func (f *passwordFixture) config(id, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: id, ClientSecret: secret,
		Endpoint: oauth2.Endpoint{TokenURL: f.ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// post sends a token request by hand (for parameters the oauth2 package
// has no option for, such as otp) and returns status and JSON body.
func (f *passwordFixture) post(form url.Values) (int, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.ts.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(f.app.ID, f.app.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *passwordFixture) principal(token string) (auth.Principal, error) {
	r := httptest.NewRequest("GET", "/v1/whoami", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return f.srv.Verify(r)
}

func oauthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return "no oauth error: " + errors.Unwrap(err).Error()
}

func TestPasswordGrantIsFencedAndUniform(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newPasswordFixture(t, s)
		ctx := context.Background()
		app := f.config(f.app.ID, f.app.Secret)

		tok, err := app.PasswordCredentialsToken(ctx, f.user.Email, f.user.Password)
		if err != nil {
			t.Fatalf("password grant: %v", err)
		}
		if tok.RefreshToken == "" || tok.Expiry.IsZero() {
			t.Fatalf("token lacks refresh token or expiry: %+v", tok)
		}
		p, err := f.principal(tok.AccessToken)
		want := []string{auth.ScopeMessagesRead, auth.ScopeMessagesSend}
		slices.Sort(p.Scopes)
		if err != nil || p.ActorKind != auth.ActorUser || p.ActorID != f.user.ID || !slices.Equal(p.Scopes, want) {
			t.Fatalf("principal = %+v (%v): want the user with the sender role's scopes %v", p, err, want)
		}

		refusals := []struct {
			name     string
			cfg      *oauth2.Config
			user, pw string
			scopes   []string
			want     string
		}{
			{"wrong password", app, f.user.Email, "wrong", nil, "invalid_grant"},
			{"unknown user", app, "ghost@a.example", "wrong", nil, "invalid_grant"},
			{"SQL in username", app, "' OR 1=1 --", "x", nil, "invalid_grant"},
			{"newline in username", app, "nurse@a.example\r\nX: y", f.user.Password, nil, "invalid_grant"},
			{"scope beyond the user's role", app, f.user.Email, f.user.Password, []string{auth.ScopeAdmin}, "invalid_scope"},
			{"not a first-party client", f.config(f.creds.ClientID, f.creds.ClientSecret), f.creds.OwnerEmail, f.creds.OwnerPassword, nil, "unauthorized_client"},
			{"wrong client secret", f.config(f.app.ID, "sps_wrong"), f.user.Email, f.user.Password, nil, "invalid_client"},
		}
		descriptions := map[string]string{}
		for _, r := range refusals {
			cfg := *r.cfg
			cfg.Scopes = r.scopes
			_, err := cfg.PasswordCredentialsToken(ctx, r.user, r.pw)
			if got := oauthErr(err); got != r.want {
				t.Errorf("%s: %s, want %s", r.name, got, r.want)
			}
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				descriptions[r.name] = re.ErrorDescription
			}
		}
		if descriptions["wrong password"] != descriptions["unknown user"] {
			t.Errorf("unknown user and wrong password answer differently: %q vs %q", descriptions["unknown user"], descriptions["wrong password"])
		}

		// The account's users only: the owner of another account cannot
		// sign in through this account's client.
		other, _, err := account.Bootstrap(ctx, s, f.accounts, audit.New(s, audit.Options{}),
			account.BootstrapOptions{AccountName: "B", OwnerEmail: "owner@b.example", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.PasswordCredentialsToken(ctx, other.OwnerEmail, other.OwnerPassword); oauthErr(err) != "invalid_grant" {
			t.Errorf("user of another account: %s", oauthErr(err))
		}

		// Off by default, and off again when the account says so.
		f.setPolicy(false, false)
		if _, err := app.PasswordCredentialsToken(ctx, f.user.Email, f.user.Password); oauthErr(err) != "unauthorized_client" {
			t.Errorf("policy off: %s, want unauthorized_client", oauthErr(err))
		}
		if _, err := app.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErr(err) != "unauthorized_client" {
			t.Errorf("refresh with policy off: %s, want unauthorized_client", oauthErr(err))
		}
	})
}

func TestPasswordGrantAsksForTheSecondFactorOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newPasswordFixture(t, s)
		ctx := context.Background()
		base := url.Values{"grant_type": {"password"}, "username": {f.user.Email}, "password": {f.user.Password}}

		// The account requires MFA and the user has not enrolled.
		f.setPolicy(true, true)
		status, out := f.post(base)
		if status != 400 || out["error"] != "invalid_grant" || !strings.Contains(out["error_description"].(string), "enrol") {
			t.Fatalf("unenrolled user under forced MFA: %d %v", status, out)
		}

		en, err := f.factors.Enrol(ctx, f.creds.AccountID, f.user.ID, f.user.Email)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.factors.Confirm(ctx, f.creds.AccountID, f.user.ID, code(t, en.Secret, f.now())); err != nil {
			t.Fatal(err)
		}
		status, out = f.post(base)
		if status != 400 || out["error"] != "invalid_grant" || !strings.Contains(out["error_description"].(string), "otp") {
			t.Fatalf("no otp: %d %v", status, out)
		}
		f.advance(30 * time.Second)
		withOTP := url.Values{"otp": {code(t, en.Secret, f.now())}}
		for k, v := range base {
			withOTP[k] = v
		}
		if status, out = f.post(withOTP); status != 200 || out["access_token"] == nil {
			t.Fatalf("with otp: %d %v", status, out)
		}
		// The same code again is refused, and so is a wrong one.
		if status, out = f.post(withOTP); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("reused otp: %d %v", status, out)
		}
		withOTP.Set("otp", "000000")
		if status, out = f.post(withOTP); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("wrong otp: %d %v", status, out)
		}
	})
}

func TestRefreshTokensRotateAndReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newPasswordFixture(t, s)
		ctx := context.Background()
		app := f.config(f.app.ID, f.app.Secret)
		first, err := app.PasswordCredentialsToken(ctx, f.user.Email, f.user.Password)
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(rt string) (*oauth2.Token, error) {
			return app.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		}
		second, err := refresh(first.RefreshToken)
		if err != nil || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
			t.Fatalf("refresh: %v (rotated: %v)", err, second != nil && second.RefreshToken != first.RefreshToken)
		}

		// Two refreshes racing with the same token both succeed.
		var wg sync.WaitGroup
		results := make([]*oauth2.Token, 2)
		errs := make([]error, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = refresh(second.RefreshToken)
			}()
		}
		wg.Wait()
		for i := range errs {
			if errs[i] != nil {
				t.Fatalf("concurrent refresh %d: %v", i, errs[i])
			}
		}
		third := results[0]
		if _, err := f.principal(third.AccessToken); err != nil {
			t.Fatalf("fresh access token: %v", err)
		}

		// Past the grace period, the rotated token is reuse: the whole
		// family is revoked, access tokens included.
		f.advance(oauth.RefreshGrace + time.Second)
		if _, err := refresh(first.RefreshToken); oauthErr(err) != "invalid_grant" {
			t.Fatalf("reused refresh token: %s", oauthErr(err))
		}
		if _, err := f.principal(third.AccessToken); err == nil {
			t.Error("access token of a revoked family still works")
		}
		if _, err := refresh(results[1].RefreshToken); oauthErr(err) != "invalid_grant" {
			t.Errorf("newest refresh token of a revoked family: %s", oauthErr(err))
		}
	})
}

func TestUserChangesTakeEffectOnTheNextRequest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newPasswordFixture(t, s)
		ctx := context.Background()
		app := f.config(f.app.ID, f.app.Secret)
		tok, err := app.PasswordCredentialsToken(ctx, f.user.Email, f.user.Password)
		if err != nil {
			t.Fatal(err)
		}
		auditor := account.RoleAuditor
		if _, err := f.admin.UpdateUser(ctx, f.system, f.user.ID, account.UserChange{Role: &auditor}); err != nil {
			t.Fatal(err)
		}
		p, err := f.principal(tok.AccessToken)
		if err != nil || p.Has(auth.ScopeMessagesSend) || p.Role != account.RoleAuditor {
			t.Fatalf("after demotion: %+v %v: the sender scopes must be gone", p, err)
		}
		disabled := true
		if _, err := f.admin.UpdateUser(ctx, f.system, f.user.ID, account.UserChange{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.principal(tok.AccessToken); err == nil {
			t.Fatal("disabled user's unexpired token still works")
		}
		if _, err := app.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErr(err) != "invalid_grant" {
			t.Errorf("disabled user's refresh: %s", oauthErr(err))
		}
	})
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSweepDeletesLongExpiredTokensOnly(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newPasswordFixture(t, s)
		ctx := context.Background()
		if _, err := f.config(f.app.ID, f.app.Secret).PasswordCredentialsToken(ctx, f.user.Email, f.user.Password); err != nil {
			t.Fatal(err)
		}
		count := func() int {
			var n int
			if err := s.Reader().QueryRow(ctx, "SELECT count(*) FROM oauth_tokens").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n, err := f.srv.Sweep(ctx); err != nil || n != 0 || count() != 2 {
			t.Fatalf("sweep of live tokens deleted %d (%v); %d left", n, err, count())
		}
		f.advance(2 * time.Hour) // the access token is a day short of old enough
		if n, _ := f.srv.Sweep(ctx); n != 0 {
			t.Fatalf("swept %d tokens expired less than a day ago", n)
		}
		f.advance(oauth.RefreshTokenLifespan + 24*time.Hour)
		if n, err := f.srv.Sweep(ctx); err != nil || n != 2 || count() != 0 {
			t.Fatalf("sweep of long-expired tokens deleted %d (%v); %d left", n, err, count())
		}
	})
}

package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestOAuthClientCredentialsAsARealClient(t *testing.T) {
	srv := serveBootstrapped(t)
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: srv.creds["client_id"], ClientSecret: srv.creds["client_secret"],
		TokenURL: srv.base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}

	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if tok.RefreshToken != "" || tok.Expiry.IsZero() {
		t.Fatalf("token: refresh %q, expiry %v", tok.RefreshToken, tok.Expiry)
	}
	bearer := cc.Client(ctx)
	get := func(c *http.Client, path string) (int, string) {
		t.Helper()
		resp, err := c.Get(srv.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(bearer, "/v1/whoami"); status != 200 || !strings.Contains(body, `"scheme":"bearer"`) {
		t.Fatalf("whoami with bearer: %d %s", status, body)
	}

	// A narrowed token holds only what it asked for.
	narrow := cc
	narrow.Scopes = []string{"audit:read"}
	narrowClient := narrow.Client(ctx)
	if status, _ := get(narrowClient, "/v1/audit-events"); status != 200 {
		t.Errorf("audit:read token on audit-events: %d", status)
	}
	if status, _ := get(narrowClient, "/v1/api-clients"); status != 403 {
		t.Errorf("audit:read token on api-clients: %d, want 403", status)
	}

	// RFC 6749 §5.2 errors.
	wrong := cc
	wrong.ClientSecret = "sps_wrong"
	var re *oauth2.RetrieveError
	if _, err := wrong.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
		t.Errorf("wrong secret: %v", err)
	}
	tooWide := cc
	tooWide.Scopes = []string{"superpowers"}
	if _, err := tooWide.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "invalid_scope" {
		t.Errorf("unknown scope: %v", err)
	}
	form := func(path string, v url.Values, basic bool) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.base+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(srv.creds["client_id"], srv.creds["client_secret"])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	if resp, out := form("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, true); resp.StatusCode != 400 ||
		out["error"] != "unsupported_grant_type" {
		t.Errorf("authorization code grant: %d %v", resp.StatusCode, out)
	}
	// The password grant is off until the account turns it on.
	if resp, out := form("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"x"}, "password": {"y"}}, true); resp.StatusCode != 400 ||
		out["error"] != "unauthorized_client" {
		t.Errorf("password grant by default: %d %v", resp.StatusCode, out)
	}
	if resp, out := form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, false); resp.StatusCode != 401 || out["error"] != "invalid_client" || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no client authentication: %d %v", resp.StatusCode, out)
	}

	// Introspection (RFC 7662) by the owning account, and not across accounts.
	if _, out := form("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, true); out["active"] != true {
		t.Errorf("introspect own token: %v", out)
	}
	code, bout, berr := run(t, srv.env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", bout, berr)
	}
	other := parseCreds(bout)
	req, _ := http.NewRequest("POST", srv.base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(other["client_id"], other["client_secret"])
	if resp, err := http.DefaultClient.Do(req); err == nil {
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out["active"] != false {
			t.Errorf("another account introspected the token: %v", out)
		}
	}

	// Revocation (RFC 7009): the token stops working at once.
	if resp, _ := form("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, true); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	plain := &http.Client{}
	req, _ = http.NewRequest("GET", srv.base+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if resp, err := plain.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("revoked token: %v %v", resp.StatusCode, err)
	}
	if _, out := form("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, true); out["active"] != false {
		t.Errorf("introspect revoked token: %v", out)
	}
	status, _, events := srv.api.call("GET", "/v1/audit-events?limit=500", srv.owner, "", "")
	if status != 200 || !strings.Contains(string(events), `"token.issued"`) || !strings.Contains(string(events), `"token.revoked"`) ||
		strings.Contains(string(events), tok.AccessToken) {
		t.Errorf("token audit: %d", status)
	}
	// Tokens never travel in URLs.
	if resp, err := plain.Get(srv.base + "/v1/whoami?access_token=" + url.QueryEscape(tok.AccessToken)); err != nil || resp.StatusCode != 400 {
		t.Errorf("access_token in URL: %v %v", resp.StatusCode, err)
	}
}

func TestOAuthPasswordGrantAsARealClient(t *testing.T) {
	srv := serveBootstrapped(t)
	ctx := context.Background()
	api, owner := srv.api, srv.owner

	status, app := api.create(owner, `{"name":"clinician app","role":"admin","first_party":true}`)
	if status != 201 {
		t.Fatalf("create first-party client: %d", status)
	}
	status, _, body := api.call("POST", "/v1/users", owner, "application/json", `{"email":"nurse@clinic.example","role":"sender"}`)
	var nurse struct {
		ID       string `json:"id"`
		Password string `json:"initial_password"`
	}
	if status != 201 || json.Unmarshal(body, &nurse) != nil {
		t.Fatalf("create user: %d %s", status, body)
	}
	cfg := oauth2.Config{ClientID: app.ID, ClientSecret: app.Secret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	var re *oauth2.RetrieveError
	if _, err := cfg.PasswordCredentialsToken(ctx, "nurse@clinic.example", nurse.Password); !errors.As(err, &re) || re.ErrorCode != "unauthorized_client" {
		t.Fatalf("before the policy allows it: %v", err)
	}
	policy := `{"allowed_schemes":["api_key","basic","bearer","hmac"],"ip_allowlist":[],"mfa_required":false,"token_ttl_seconds":900,"allow_password_grant":true}`
	if status, _, body := api.call("PUT", "/v1/auth-policy", owner, "application/json", policy); status != 200 || !strings.Contains(string(body), `"allow_password_grant":true`) {
		t.Fatalf("allow the password grant: %d %s", status, body)
	}
	tok, err := cfg.PasswordCredentialsToken(ctx, "nurse@clinic.example", nurse.Password)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("password grant: %v", err)
	}
	whoami := func(c *http.Client) (int, string) {
		t.Helper()
		resp, err := c.Get(srv.base + "/v1/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	client := cfg.Client(ctx, tok)
	if status, body := whoami(client); status != 200 || !strings.Contains(body, `"actor_kind":"user"`) || !strings.Contains(body, nurse.ID) ||
		strings.Contains(body, `"admin"`) {
		t.Fatalf("whoami as the user: %d %s", status, body)
	}
	if status, _ := whoami(client); status != 200 {
		t.Fatal("second request")
	}
	if status, _, body := api.call("PATCH", "/v1/users/"+nurse.ID, owner, "application/json", `{"disabled":true}`); status != 200 {
		t.Fatalf("disable: %d %s", status, body)
	}
	if status, _ := whoami(cfg.Client(ctx, tok)); status != 401 {
		t.Fatalf("disabled user's token: %d, want 401 at the next request", status)
	}
}

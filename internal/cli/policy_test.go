package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestAuthPolicyIsEnforcedAndCannotLockOut(t *testing.T) {
	srv := serveBootstrapped(t)
	base, owner, api := srv.base, srv.owner, srv.api

	status, _, body := api.call("GET", "/v1/auth-policy", owner, "", "")
	if status != 200 || !strings.Contains(string(body), `"allowed_schemes":["api_key","basic","bearer","hmac"]`) || !strings.Contains(string(body), `"token_ttl_seconds":900`) {
		t.Fatalf("default policy: %d %s", status, body)
	}
	put := func(policy string) (int, []byte) {
		status, _, body := api.call("PUT", "/v1/auth-policy", owner, "application/json", policy)
		return status, body
	}
	refused := []struct{ name, policy string }{
		{"no scheme", `{"allowed_schemes":[],"ip_allowlist":[],"mfa_required":false,"token_ttl_seconds":900}`},
		{"unknown scheme", `{"allowed_schemes":["api_key","kerberos"],"ip_allowlist":[],"mfa_required":false,"token_ttl_seconds":900}`},
		{"bad prefix", `{"allowed_schemes":["api_key"],"ip_allowlist":["10.0.0.0/33"],"mfa_required":false,"token_ttl_seconds":900}`},
		{"ttl too long", `{"allowed_schemes":["api_key"],"ip_allowlist":[],"mfa_required":false,"token_ttl_seconds":7200}`},
		{"locks out the caller's scheme", `{"allowed_schemes":["basic","hmac"],"ip_allowlist":[],"mfa_required":false,"token_ttl_seconds":900}`},
		{"locks out the caller's address", `{"allowed_schemes":["api_key"],"ip_allowlist":["10.0.0.0/8"],"mfa_required":false,"token_ttl_seconds":900}`},
	}
	for _, c := range refused {
		if status, body := put(c.policy); status != 422 {
			t.Errorf("%s: %d %s, want 422", c.name, status, body)
		}
	}
	if status, _ := put(`{"allowed_schemes":["api_key"],"ip_allowlist":[],"mfa_required":false,"token_ttl_seconds":900,"extra":1}`); status != 400 {
		t.Errorf("unknown field: %d", status)
	}

	// Allow only X-API-Key from loopback: Basic is refused from then on.
	status, body = put(`{"allowed_schemes":["api_key"],"ip_allowlist":["127.0.0.0/8","::1"],"mfa_required":true,"token_ttl_seconds":600}`)
	if status != 200 {
		t.Fatalf("put: %d %s", status, body)
	}
	req, _ := http.NewRequest("GET", base+"/v1/auth-policy", nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(owner)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("Basic after disabling it: %d, want 401", resp.StatusCode)
	}
	// Bearer tokens are switched off too: the token endpoint refuses.
	tokReq, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	tokReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	id, secret, _ := strings.Cut(owner, ":")
	tokReq.SetBasicAuth(id, secret)
	if resp, err := http.DefaultClient.Do(tokReq); err != nil || resp.StatusCode < 400 {
		t.Fatalf("token issued although bearer is not allowed: %v %v", resp.StatusCode, err)
	}
	status, _, body = api.call("GET", "/v1/auth-policy", owner, "", "")
	if status != 200 || !strings.Contains(string(body), `"ip_allowlist":["127.0.0.0/8","::1/128"]`) || !strings.Contains(string(body), `"mfa_required":true`) {
		t.Fatalf("policy after put: %d %s", status, body)
	}

	_, _, events := api.call("GET", "/v1/audit-events?limit=500", owner, "", "")
	var page struct {
		Data []struct {
			Action  string            `json:"action"`
			Details map[string]string `json:"details"`
		} `json:"data"`
	}
	if err := json.Unmarshal(events, &page); err != nil {
		t.Fatal(err)
	}
	var updated, basicRefused bool
	for _, e := range page.Data {
		updated = updated || e.Action == "auth_policy.updated" && e.Details["ip_allowlist_entries"] == "2"
		basicRefused = basicRefused || e.Action == "auth.failed" && e.Details["reason"] == "basic disabled by policy"
	}
	if !updated || !basicRefused {
		t.Errorf("audit: policy update %v, refused Basic %v", updated, basicRefused)
	}
}

func TestRepeatedFailuresAreThrottled(t *testing.T) {
	srv := serveBootstrapped(t)
	creds, api := srv.creds, srv.api
	for i := range 30 {
		if status, _, _ := api.call("GET", "/v1/api-clients", creds["client_id"]+":wrong-"+fmt.Sprint(i), "", ""); status != 401 {
			t.Fatalf("failure %d: %d", i, status)
		}
	}
	// Now even the right secret waits: the address is throttled.
	status, h, _ := api.call("GET", "/v1/api-clients", creds["client_id"]+":"+creds["client_secret"], "", "")
	if status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("after 30 failures: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
}

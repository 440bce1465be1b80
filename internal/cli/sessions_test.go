package cli_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/pkg/sealpostclient"
)

// A real client, the shipped Go package, signs requests to the real server.
func TestHMACSessionEndToEnd(t *testing.T) {
	srv := serveBootstrapped(t)
	base, creds, api := srv.base, srv.creds, srv.api
	ctx := context.Background()
	sess, err := sealpostclient.Open(ctx, http.DefaultClient, base, creds["client_id"], creds["client_secret"])
	if err != nil {
		t.Fatal(err)
	}
	signedClient := &http.Client{Transport: &sealpostclient.Transport{Session: sess}}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := signedClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := api.contract.Check(req, resp.StatusCode, resp.Header, b); err != nil {
			t.Errorf("%s %s -> %d breaks the contract: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode, string(b)
	}
	if status, body := do("GET", "/v1/whoami", ""); status != 200 || !strings.Contains(body, `"scheme":"hmac"`) || !strings.Contains(body, `"session_id":"`+sess.ID+`"`) {
		t.Fatalf("whoami over a session: %d %s", status, body)
	}
	if status, body := do("GET", "/v1/audit-events?action=session.opened", ""); status != 200 || !strings.Contains(body, "session.opened") {
		t.Fatalf("signed GET: %d %s", status, body)
	}
	if status, body := do("POST", "/v1/api-clients", `{"name":"signed","role":"auditor"}`); status != 201 {
		t.Fatalf("signed POST: %d %s", status, body)
	}
	// A session cannot open another session.
	if status, _ := do("POST", "/v1/sessions", ""); status != 403 {
		t.Errorf("session opening a session: %d, want 403", status)
	}
	// Unsigned or wrongly signed requests with the session id fail.
	req, _ := http.NewRequest("GET", base+"/v1/audit-events", nil)
	req.Header.Set("Authorization", "Sealpost-HMAC-SHA256 Session="+sess.ID+", Timestamp=1, Nonce=n, SignedHeaders=content-type;host, Signature="+strings.Repeat("0", 64))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("forged signature: %v %v", resp.StatusCode, err)
	}
	if status, _ := do("DELETE", "/v1/sessions/"+sess.ID, ""); status != 204 {
		t.Fatalf("revoke own session: %d", status)
	}
	if status, _ := do("GET", "/v1/audit-events", ""); status != 401 {
		t.Fatalf("after revocation: %d, want 401", status)
	}
}

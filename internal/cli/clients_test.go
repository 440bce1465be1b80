package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/api/apitest"
)

// apiClient calls the real server and checks every answer against the
// published contract.
type apiClient struct {
	t        *testing.T
	base     string
	contract *apitest.Contract
}

func newAPIClient(t *testing.T, base string) *apiClient {
	t.Helper()
	c, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{t: t, base: base, contract: c}
}

func (a *apiClient) call(method, path, key, contentType, body string) (int, http.Header, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if err := a.contract.Check(req, resp.StatusCode, resp.Header, out); err != nil {
		a.t.Errorf("%s %s -> %d breaks the contract: %v\n%s", method, path, resp.StatusCode, err, out)
	}
	return resp.StatusCode, resp.Header, out
}

// bootstrapped is a running server with its first account's credentials.
type bootstrapped struct {
	env   []string // environment of the server's data dir, for CLI runs
	base  string
	creds map[string]string
	owner string // the owner client's X-API-Key value
	api   *apiClient
}

func serveBootstrapped(t *testing.T) bootstrapped {
	t.Helper()
	env := []string{"SEALPOST_DATA_DIR=" + t.TempDir()}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	return bootstrapped{env: env, base: base, creds: creds, owner: creds["client_id"] + ":" + creds["client_secret"], api: newAPIClient(t, base)}
}

type createdClient struct {
	ID     string   `json:"id"`
	Secret string   `json:"client_secret"`
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
}

func (a *apiClient) create(key, body string) (int, createdClient) {
	a.t.Helper()
	status, _, out := a.call("POST", "/v1/api-clients", key, "application/json", body)
	var c createdClient
	if status == 201 {
		if err := json.Unmarshal(out, &c); err != nil {
			a.t.Fatal(err)
		}
	}
	return status, c
}

func TestClientCredentialLifecycle(t *testing.T) {
	srv := serveBootstrapped(t)
	env, creds, owner, api := srv.env, srv.creds, srv.owner, srv.api

	status, ehr := api.create(owner, `{"name":"EHR integration","role":"sender"}`)
	if status != 201 || ehr.Secret == "" || ehr.Role != "sender" || len(ehr.Scopes) == 0 {
		t.Fatalf("create: %d %+v", status, ehr)
	}
	ehrKey := ehr.ID + ":" + ehr.Secret

	// The sender credential works (403, not 401) but holds no admin or audit scope.
	for _, path := range []string{"/v1/audit-events", "/v1/api-clients"} {
		if status, _, _ := api.call("GET", path, ehrKey, "", ""); status != 403 {
			t.Errorf("sender GET %s: %d, want 403", path, status)
		}
	}
	status, _, list := api.call("GET", "/v1/api-clients", owner, "", "")
	if status != 200 || !strings.Contains(string(list), ehr.ID) || strings.Contains(string(list), ehr.Secret) {
		t.Fatalf("list: %d %s", status, list)
	}

	// Rotation: the old secret stops working at once, the new one works.
	status, _, body := api.call("POST", "/v1/api-clients/"+ehr.ID+"/rotate", owner, "", "")
	var rotated createdClient
	if status != 200 || json.Unmarshal(body, &rotated) != nil || rotated.Secret == "" || rotated.Secret == ehr.Secret {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if status, _, _ := api.call("GET", "/v1/api-clients", ehrKey, "", ""); status != 401 {
		t.Errorf("old secret after rotation: %d, want 401", status)
	}
	newKey := ehr.ID + ":" + rotated.Secret
	if status, _, _ := api.call("GET", "/v1/api-clients", newKey, "", ""); status != 403 {
		t.Errorf("new secret after rotation: %d, want 403 (valid, unscoped)", status)
	}

	// Revocation takes effect on the next request.
	if status, _, _ := api.call("DELETE", "/v1/api-clients/"+ehr.ID, owner, "", ""); status != 204 {
		t.Fatalf("revoke: %d", status)
	}
	if status, _, _ := api.call("GET", "/v1/api-clients", newKey, "", ""); status != 401 {
		t.Errorf("revoked client: %d, want 401", status)
	}
	if status, _, _ := api.call("DELETE", "/v1/api-clients/"+ehr.ID, owner, "", ""); status != 404 {
		t.Errorf("second revoke: %d, want 404", status)
	}

	// Bad input: each refused with its problem, nothing created.
	bad := []struct {
		name, contentType, body string
		want                    int
	}{
		{"unknown field", "application/json", `{"name":"x","role":"sender","admin":true}`, 400},
		{"malformed JSON", "application/json", `{"name":`, 400},
		{"wrong content type", "text/plain", `{"name":"x","role":"sender"}`, 415},
		{"missing role", "application/json", `{"name":"x"}`, 422},
		{"unknown role", "application/json", `{"name":"x","role":"root"}`, 422},
		{"scope outside role", "application/json", `{"name":"x","role":"auditor","scopes":["messages:send"]}`, 422},
		{"blank name", "application/json", `{"name":"   ","role":"sender"}`, 422},
	}
	for _, c := range bad {
		status, h, body := api.call("POST", "/v1/api-clients", owner, c.contentType, c.body)
		if status != c.want || h.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem", c.name, status, body, c.want)
		}
	}

	// No escalation: a client narrowed to admin+audit:read cannot mint a sender.
	status, narrow := api.create(owner, `{"name":"ops","role":"admin","scopes":["admin","audit:read"]}`)
	if status != 201 {
		t.Fatalf("create narrowed admin: %d", status)
	}
	if status, _ := api.create(narrow.ID+":"+narrow.Secret, `{"name":"mint","role":"sender"}`); status != 403 {
		t.Errorf("escalation: %d, want 403", status)
	}
	if status, _ := api.create(narrow.ID+":"+narrow.Secret, `{"name":"peer","role":"auditor"}`); status != 201 {
		t.Errorf("narrowed admin creating an auditor: %d, want 201", status)
	}

	// Another account never sees or touches these clients.
	code, bout, berr := run(t, env, "admin", "bootstrap", "--force", "--account-name", "Other clinic", "--owner-email", "owner@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", bout, berr)
	}
	credsB := parseCreds(bout)
	ownerB := credsB["client_id"] + ":" + credsB["client_secret"]
	if status, _, _ := api.call("POST", "/v1/api-clients/"+narrow.ID+"/rotate", ownerB, "", ""); status != 404 {
		t.Errorf("cross-account rotate: %d, want 404", status)
	}
	if status, _, _ := api.call("DELETE", "/v1/api-clients/"+narrow.ID, ownerB, "", ""); status != 404 {
		t.Errorf("cross-account revoke: %d, want 404", status)
	}
	_, _, listB := api.call("GET", "/v1/api-clients", ownerB, "", "")
	if strings.Contains(string(listB), narrow.ID) || strings.Contains(string(listB), ehr.ID) {
		t.Error("account B lists account A's clients")
	}
	if status, _, _ := api.call("GET", "/v1/api-clients", narrow.ID+":"+narrow.Secret, "", ""); status != 200 {
		t.Errorf("A's client after B's attempts: %d", status)
	}

	// Every change is in A's audit log, attributed to the acting client.
	_, _, events := api.call("GET", "/v1/audit-events?limit=500", owner, "", "")
	var page struct {
		Data []struct {
			Action  string `json:"action"`
			ActorID string `json:"actor_id"`
			Target  string `json:"target"`
		} `json:"data"`
	}
	if err := json.Unmarshal(events, &page); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"client.created": creds["client_id"], "client.rotated": creds["client_id"], "client.revoked": creds["client_id"]}
	for _, e := range page.Data {
		if actor, ok := want[e.Action]; ok && e.ActorID == actor && e.Target == "client/"+ehr.ID {
			delete(want, e.Action)
		}
	}
	if len(want) != 0 {
		t.Errorf("audit lacks %v", want)
	}
	// Refusals are audited too: the sender's denied scope, the rotated-out
	// and the revoked secret.
	refusals := map[string]int{}
	for _, e := range page.Data {
		if e.ActorID == ehr.ID {
			refusals[e.Action]++
		}
	}
	if refusals["auth.denied"] != 3 || refusals["auth.failed"] != 2 {
		t.Errorf("refusals audited: %v, want 3 auth.denied (two scopes before rotation, one after) and 2 auth.failed (rotated-out, revoked)", refusals)
	}
	if strings.Contains(string(events), rotated.Secret) || strings.Contains(string(events), ehr.Secret) {
		t.Error("audit log holds a secret")
	}
}

func TestAdminClientsCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"SEALPOST_DATA_DIR=" + dir}
	code, out, errOut := run(t, env, "admin", "bootstrap")
	if code != 0 {
		t.Fatalf("bootstrap: %s", errOut)
	}
	acct := parseCreds(out)["account_id"]

	code, out, errOut = run(t, env, "admin", "clients", "create", "--account", acct, "--name", "lab feed", "--role", "sender")
	created := parseCreds(out)
	if code != 0 || created["client_id"] == "" || created["client_secret"] == "" {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	code, out, _ = run(t, env, "admin", "clients", "list", "--account", acct)
	if code != 0 || !strings.Contains(out, created["client_id"]) || strings.Contains(out, created["client_secret"]) {
		t.Fatalf("list: %d %s", code, out)
	}
	code, out, _ = run(t, env, "admin", "clients", "rotate", "--account", acct, "--client", created["client_id"])
	if code != 0 || parseCreds(out)["client_secret"] == "" || parseCreds(out)["client_secret"] == created["client_secret"] {
		t.Fatalf("rotate: %d %s", code, out)
	}
	if code, _, errOut := run(t, env, "admin", "clients", "revoke", "--account", acct, "--client", created["client_id"]); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	code, out, _ = run(t, env, "admin", "clients", "list", "--account", acct)
	revokedShown := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, created["client_id"]) {
			revokedShown = !strings.HasSuffix(strings.TrimSpace(line), " -")
		}
	}
	if code != 0 || !revokedShown {
		t.Fatalf("list after revoke does not show the revocation time:\n%s", out)
	}

	failures := []struct {
		name string
		args []string
	}{
		{"unknown role", []string{"create", "--account", acct, "--name", "x", "--role", "root"}},
		{"unknown account", []string{"list", "--account", "no-such-account"}},
		{"missing account", []string{"list"}},
		{"rotate without client", []string{"rotate", "--account", acct}},
		{"rotate revoked", []string{"rotate", "--account", acct, "--client", created["client_id"]}},
		{"unknown verb", []string{"frobnicate"}},
	}
	for _, f := range failures {
		if code, _, _ := run(t, env, append([]string{"admin", "clients"}, f.args...)...); code == 0 {
			t.Errorf("%s: exit 0", f.name)
		}
	}
	if code, out, errOut := run(t, env, "audit", "verify", "--account", acct); code != 0 || !strings.Contains(out, "OK, 6 events") {
		t.Fatalf("audit after CLI changes: %d %s %s", code, out, errOut)
	}
}

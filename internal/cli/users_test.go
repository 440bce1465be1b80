package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestUserAdministrationOverTheAPI(t *testing.T) {
	srv := serveBootstrapped(t)
	api, owner := srv.api, srv.owner
	status, _, body := api.call("POST", "/v1/users", owner, "application/json", `{"email":"nurse@clinic.example","role":"sender"}`)
	var u struct {
		ID       string `json:"id"`
		Password string `json:"initial_password"`
	}
	if status != 201 || json.Unmarshal(body, &u) != nil || u.Password == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	status, _, list := api.call("GET", "/v1/users", owner, "", "")
	if status != 200 || !strings.Contains(string(list), "nurse@clinic.example") || strings.Contains(string(list), u.Password) {
		t.Fatalf("list: %d %s", status, list)
	}
	if status, _, body := api.call("PATCH", "/v1/users/"+u.ID, owner, "application/json", `{"disabled":true}`); status != 200 || !strings.Contains(string(body), `"disabled":true`) {
		t.Fatalf("disable: %d %s", status, body)
	}
	var users struct {
		Data []struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"data"`
	}
	_ = json.Unmarshal(list, &users)
	var ownerID string
	for _, x := range users.Data {
		if x.Role == "owner" {
			ownerID = x.ID
		}
	}
	bad := []struct {
		name, method, path, body string
		want                     int
	}{
		{"demote the last owner", "PATCH", "/v1/users/" + ownerID, `{"role":"admin"}`, 409},
		{"duplicate email", "POST", "/v1/users", `{"email":"nurse@clinic.example","role":"sender"}`, 409},
		{"header injection in email", "POST", "/v1/users", `{"email":"a@b.example\r\nBcc: c@d.example","role":"sender"}`, 422},
		{"NUL in email", "POST", "/v1/users", `{"email":"a\u0000b@clinic.example","role":"sender"}`, 422},
		{"SQL in email", "POST", "/v1/users", `{"email":"' OR 1=1 --","role":"sender"}`, 422},
		{"unknown role", "POST", "/v1/users", `{"email":"x@clinic.example","role":"root"}`, 422},
		{"unknown field", "PATCH", "/v1/users/" + u.ID, `{"password":"x"}`, 400},
		{"unknown user", "PATCH", "/v1/users/nobody", `{"disabled":true}`, 404},
	}
	for _, c := range bad {
		if status, _, body := api.call(c.method, c.path, owner, "application/json", c.body); status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.want)
		}
	}
}

func TestAdminUsersCommands(t *testing.T) {
	t.Parallel()
	env := []string{"SEALPOST_DATA_DIR=" + t.TempDir()}
	code, out, errOut := run(t, env, "admin", "bootstrap")
	if code != 0 {
		t.Fatalf("bootstrap: %s", errOut)
	}
	acct := parseCreds(out)["account_id"]
	code, out, errOut = run(t, env, "admin", "users", "create", "--account", acct, "--email", "clerk@clinic.example", "--role", "auditor")
	if code != 0 || !strings.Contains(out, "initial_password: ") {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	var userID string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "user_id: "); ok {
			userID = v
		}
	}
	code, out, _ = run(t, env, "admin", "users", "update", "--account", acct, "--user", userID, "--role", "sender", "--disabled")
	if code != 0 || !strings.Contains(out, "role: sender") || !strings.Contains(out, "disabled: true") {
		t.Fatalf("update: %d %s", code, out)
	}
	code, out, _ = run(t, env, "admin", "users", "list", "--account", acct)
	if code != 0 || !strings.Contains(out, "clerk@clinic.example") || !strings.Contains(out, "owner@example.com") {
		t.Fatalf("list: %d %s", code, out)
	}
	for _, args := range [][]string{
		{"create", "--account", acct, "--email", "not an email", "--role", "sender"},
		{"update", "--account", acct},
		{"list"},
		{"update", "--account", acct, "--user", userID, "--disabled=maybe"},
	} {
		if code, _, _ := run(t, env, append([]string{"admin", "users"}, args...)...); code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
	if code, out, _ := run(t, env, "audit", "verify", "--account", acct); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("audit verify: %s", out)
	}
}

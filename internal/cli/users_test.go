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

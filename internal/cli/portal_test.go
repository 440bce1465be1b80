package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPortalAPIRefusesBadInputAndOtherAccounts(t *testing.T) {
	w := serveWithPortal(t)
	api, owner := w.api, w.owner
	unverified := `{"from":"results@clinic.example","to":"pat@patient.example","subject":"s","text":"t"}`
	if status, _, body := api.call("POST", "/v1/portal-messages", owner, "application/json", unverified); status != 422 ||
		!strings.Contains(string(body), "verified sending domain") {
		t.Errorf("deposit from an unverified domain: %d %s", status, body)
	}
	verifyDomain(t, w, "clinic.example")
	bad := []struct {
		name, body string
		want       int
	}{
		{"unknown field", `{"from":"results@clinic.example","to":"pat@patient.example","text":"t","cc":["x@y.example"]}`, 400},
		{"malformed JSON", `{"from":`, 400},
		{"several recipients", `{"from":"results@clinic.example","to":"a@patient.example, b@patient.example","text":"t"}`, 422},
		{"no body", `{"from":"results@clinic.example","to":"pat@patient.example","subject":"s"}`, 422},
		{"attachment with a path", `{"from":"results@clinic.example","to":"pat@patient.example","text":"t","attachments":[{"filename":"../x","content":"eA=="}]}`, 422},
		{"unknown challenge", `{"from":"results@clinic.example","to":"pat@patient.example","text":"t","challenge":{"kind":"riddle","answer":"x"}}`, 422},
	}
	for _, c := range bad {
		if status, _, body := api.call("POST", "/v1/portal-messages", owner, "application/json", c.body); status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.want)
		}
	}
	status, _, body := api.call("POST", "/v1/portal-messages", owner, "application/json",
		`{"from":"results@clinic.example","to":"pat@patient.example","subject":"s","text":"t","challenge":{"kind":"dob","answer":"1980-04-01","hint":"Your date of birth"}}`)
	var pm struct {
		ID, State, Challenge string
	}
	if status != 202 || json.Unmarshal(body, &pm) != nil || pm.Challenge != "dob" {
		t.Fatalf("deposit: %d %s", status, body)
	}
	if strings.Contains(string(body), "1980") {
		t.Error("the answer is echoed")
	}
	for name, settings := range map[string]string{
		"missing fields":     `{"display_name":"x"}`,
		"a third-party logo": `{"display_name":"","logo_url":"https://cdn.example/l.png","primary_color":""}`,
		"a CSS colour":       `{"display_name":"","logo_url":"","primary_color":"red"}`,
	} {
		if status, _, body := api.call("PUT", "/v1/portal-settings", owner, "application/json", settings); status != 422 {
			t.Errorf("settings with %s: %d %s", name, status, body)
		}
	}
	// The portal period is the retention policy's portal_message_days now.
	if status, _, body := api.call("PUT", "/v1/portal-settings", owner, "application/json",
		`{"display_name":"","logo_url":"","primary_color":"","retention_hours":48}`); status != 400 ||
		!strings.Contains(string(body), "unknown-field") {
		t.Errorf("settings with the removed retention_hours: %d %s", status, body)
	}

	// Another account sees none of it.
	code, out, errOut := run(t, w.env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", out, errOut)
	}
	other := parseCreds(out)
	otherKey := other["client_id"] + ":" + other["client_secret"]
	if status, _, _ := api.call("GET", "/v1/portal-messages/"+pm.ID, otherKey, "", ""); status != 404 {
		t.Errorf("another account reads it: %d", status)
	}
	if status, _, _ := api.call("POST", "/v1/portal-messages/"+pm.ID+"/recall", otherKey, "", ""); status != 404 {
		t.Errorf("another account recalls it: %d", status)
	}
	if status, _, body := api.call("GET", "/v1/portal-messages/"+pm.ID, owner, "", ""); status != 200 || strings.Contains(string(body), "recalled_at\":\"") {
		t.Errorf("after the other account's attempts: %d %s", status, body)
	}
}

func TestPortalRefusesDepositsWithoutAPublicURL(t *testing.T) {
	srv := serveBootstrapped(t)
	status, _, body := srv.api.call("POST", "/v1/portal-messages", srv.owner, "application/json",
		`{"from":"results@clinic.example","to":"pat@patient.example","text":"t"}`)
	if status != 409 || !strings.Contains(string(body), "http.public_url") {
		t.Errorf("deposit without a public URL: %d %s", status, body)
	}
}

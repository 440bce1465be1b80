package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/keys/keystest"
)

func TestPGPSenderKeysThroughTheRealServer(t *testing.T) {
	const clinic, pass = "noreply@clinic.example", "clinic passphrase 2026"
	dir := t.TempDir()
	env := []string{"SEALPOST_DATA_DIR=" + filepath.Join(dir, "data")}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	owner := creds["client_id"] + ":" + creds["client_secret"]
	api := newAPIClient(t, base)
	const path = "/v1/keys/pgp-senders"
	priv := func(address string, s keystest.PGPSpec) string {
		return string(keystest.ArmorPrivate(t, keystest.PGPEntity(t, address, s)))
	}
	locked := priv(clinic, keystest.PGPSpec{Passphrase: pass})

	bad := []struct {
		name    string
		body    map[string]string
		status  int
		problem string
		field   string
	}{
		{"wrong passphrase", map[string]string{"address": clinic, "private_key": locked, "passphrase": "not the passphrase"}, 422, "key-locked", "passphrase"},
		{"protected key without a passphrase", map[string]string{"address": clinic, "private_key": locked}, 422, "key-locked", "passphrase"},
		{"public key instead of the private key", map[string]string{"address": clinic, "private_key": string(keystest.PGP(t, clinic, keystest.PGPSpec{}))}, 422, "key-malformed", "private_key"},
		{"malformed armor", map[string]string{"address": clinic, "private_key": "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n!!!\n-----END PGP PRIVATE KEY BLOCK-----\n"}, 422, "key-malformed", "private_key"},
		{"key for another address", map[string]string{"address": "billing@clinic.example", "private_key": priv(clinic, keystest.PGPSpec{})}, 422, "key-address-mismatch", "address"},
		{"key without a user id in the domain", map[string]string{"domain": "hospital.example", "private_key": priv(clinic, keystest.PGPSpec{})}, 422, "key-address-mismatch", "domain"},
		{"expired key", map[string]string{"address": clinic, "private_key": priv(clinic, keystest.PGPSpec{Lifetime: 30 * time.Minute})}, 422, "key-expired", "private_key"},
		{"key that cannot sign", map[string]string{"address": clinic, "private_key": priv(clinic, keystest.PGPSpec{CannotSign: true})}, 422, "key-wrong-usage", "private_key"},
		{"secret material of another key", map[string]string{"address": clinic, "private_key": priv(clinic, keystest.PGPSpec{ForeignSecret: true})}, 422, "key-pair-mismatch", "private_key"},
		{"a certificate on the PGP sender route", map[string]string{"address": clinic, "private_key": locked, "certificate": "x"}, 400, "unknown-field", "certificate"},
	}
	for _, c := range bad {
		status, _, body := api.call("POST", path, owner, "application/json", keyBody(t, c.body))
		var p struct {
			Type   string `json:"type"`
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		}
		_ = json.Unmarshal(body, &p)
		if status != c.status || p.Type != "urn:sealpost:problem:"+c.problem || len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %d %s, want %d %s on %s", c.name, status, body, c.status, c.problem, c.field)
		}
		given := c.body["passphrase"]
		if strings.Contains(string(body), "BEGIN") || strings.Contains(string(body), pass) || (given != "" && strings.Contains(string(body), given)) {
			t.Errorf("%s: the problem echoes the input: %s", c.name, body)
		}
	}

	status, _, body := api.call("POST", path, owner, "application/json", keyBody(t, map[string]string{"domain": "clinic.example", "private_key": locked, "passphrase": pass}))
	var k keyAnswer
	if status != 201 || json.Unmarshal(body, &k) != nil || k.Status != "valid" || k.Address != nil || k.Domain != "clinic.example" || k.SignsAs != clinic || k.Fingerprint == "" {
		t.Fatalf("upload: %d %s", status, body)
	}
	if strings.Contains(string(body), "PRIVATE") || strings.Contains(string(body), pass) {
		t.Fatalf("the answer holds the key or the passphrase: %s", body)
	}
	status, _, body = api.call("GET", path+"?address=clinic.example", owner, "", "")
	var l keyList
	if status != 200 || json.Unmarshal(body, &l) != nil || len(l.Data) != 1 || l.Data[0].ID != k.ID || strings.Contains(string(body), "PRIVATE") {
		t.Fatalf("list: %d %s", status, body)
	}

	// Another account sees and deletes nothing; nor does the S/MIME
	// sender route delete it.
	code, bout, berr := run(t, env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", bout, berr)
	}
	oc := parseCreds(bout)
	otherOwner := oc["client_id"] + ":" + oc["client_secret"]
	if status, _, body := api.call("GET", path, otherOwner, "", ""); status != 200 || strings.Contains(string(body), k.ID) {
		t.Errorf("another account lists the key: %d %s", status, body)
	}
	if status, _, _ := api.call("DELETE", path+"/"+k.ID, otherOwner, "", ""); status != 404 {
		t.Errorf("another account deletes the key: %d, want 404", status)
	}
	if status, _, _ := api.call("DELETE", "/v1/keys/smime-senders/"+k.ID, owner, "", ""); status != 404 {
		t.Errorf("deleted through the S/MIME sender route: %d, want 404", status)
	}
	if status, _, body := api.call("DELETE", path+"/"+k.ID, owner, "", ""); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}

	for _, action := range []string{"key.pgp_sender.uploaded", "key.pgp_sender.deleted"} {
		status, _, body := api.call("GET", "/v1/audit-events?action="+action, owner, "", "")
		if status != 200 || !strings.Contains(string(body), k.ID) {
			t.Errorf("audit %s: %d %s", action, status, body)
		}
	}
	status, _, body = api.call("GET", "/v1/audit-events", owner, "", "")
	if status != 200 || strings.Contains(string(body), "BEGIN") || strings.Contains(string(body), pass) {
		t.Errorf("the audit log holds key material or the passphrase: %s", body)
	}
}

package cli_test

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/keys/keystest"
)

// keyBody encodes an upload request.
func keyBody(t *testing.T, fields map[string]string) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type keyAnswer struct {
	ID          string  `json:"id"`
	Address     *string `json:"address"`
	Domain      string  `json:"domain"`
	SignsAs     string  `json:"signs_as"`
	Fingerprint string  `json:"fingerprint"`
	Status      string  `json:"status"`
}

type keyList struct {
	Data       []keyAnswer `json:"data"`
	NextCursor *string     `json:"next_cursor"`
}

func TestKeyManagementThroughTheRealServer(t *testing.T) {
	const patient, clinic = "rita@patients.example", "noreply@clinic.example"
	ca := keystest.NewCA(t, "Clinic Mail CA")
	revoked, _ := ca.Issue(t, keystest.Leaf{Emails: []string{patient}})
	dir := t.TempDir()
	trust, crl := filepath.Join(dir, "mail-ca.pem"), filepath.Join(dir, "mail-ca.crl")
	if err := os.WriteFile(trust, keystest.CertPEM(ca.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crl, keystest.CRLPEM(ca.CRL(t, revoked)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEALPOST_DATA_DIR=" + filepath.Join(dir, "data"), "SEALPOST_SECURELINE_SMIME_TRUST_FILE=" + trust,
		"SEALPOST_SECURELINE_SMIME_CRL_FILE=" + crl}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	owner := creds["client_id"] + ":" + creds["client_secret"]
	api := newAPIClient(t, base)

	other := keystest.NewCA(t, "Unrelated CA")
	expired, _ := ca.Issue(t, keystest.Leaf{Emails: []string{patient}, NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	signOnlyCert, _ := ca.Issue(t, keystest.Leaf{Emails: []string{patient}, KeyUsage: x509.KeyUsageDigitalSignature})
	elsewhere, _ := ca.Issue(t, keystest.Leaf{Emails: []string{"someone@patients.example"}})
	untrusted, _ := other.Issue(t, keystest.Leaf{Emails: []string{patient}})
	senderCert, senderKey := ca.Issue(t, keystest.Leaf{Emails: []string{clinic}})
	pem := func(c *x509.Certificate) string { return string(keystest.CertPEM(c)) }
	pgp := func(address string, s keystest.PGPSpec) string { return string(keystest.PGP(t, address, s)) }

	bad := []struct {
		name, path string
		body       map[string]string
		status     int
		problem    string
		field      string
	}{
		{"malformed armored key", "/v1/keys/pgp", map[string]string{"address": patient, "public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!\n-----END PGP PUBLIC KEY BLOCK-----\n"}, 422, "key-malformed", "public_key"},
		{"expired PGP key", "/v1/keys/pgp", map[string]string{"address": patient, "public_key": pgp(patient, keystest.PGPSpec{Lifetime: 30 * time.Minute})}, 422, "key-expired", "public_key"},
		{"revoked PGP key", "/v1/keys/pgp", map[string]string{"address": patient, "public_key": pgp(patient, keystest.PGPSpec{Revoked: true})}, 422, "key-revoked", "public_key"},
		{"PGP key that cannot encrypt", "/v1/keys/pgp", map[string]string{"address": patient, "public_key": pgp(patient, keystest.PGPSpec{SignOnly: true})}, 422, "key-wrong-usage", "public_key"},
		{"PGP key for a different address", "/v1/keys/pgp", map[string]string{"address": patient, "public_key": pgp("someone@patients.example", keystest.PGPSpec{})}, 422, "key-address-mismatch", "address"},
		{"PGP key without an address", "/v1/keys/pgp", map[string]string{"public_key": pgp(patient, keystest.PGPSpec{})}, 422, "validation", "address"},
		{"a certificate on the PGP route", "/v1/keys/pgp", map[string]string{"address": patient, "certificate": pem(senderCert)}, 400, "unknown-field", "certificate"},
		{"malformed certificate", "/v1/keys/smime", map[string]string{"address": patient, "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, 422, "key-malformed", "certificate"},
		{"expired certificate", "/v1/keys/smime", map[string]string{"address": patient, "certificate": pem(expired)}, 422, "key-expired", "certificate"},
		{"revoked certificate", "/v1/keys/smime", map[string]string{"address": patient, "certificate": pem(revoked)}, 422, "key-revoked", "certificate"},
		{"certificate without keyEncipherment", "/v1/keys/smime", map[string]string{"address": patient, "certificate": pem(signOnlyCert)}, 422, "key-wrong-usage", "certificate"},
		{"certificate for a different address", "/v1/keys/smime", map[string]string{"address": patient, "certificate": pem(elsewhere)}, 422, "key-address-mismatch", "address"},
		{"certificate from an untrusted CA", "/v1/keys/smime", map[string]string{"address": patient, "certificate": pem(untrusted)}, 422, "key-untrusted", "certificate"},
		{"sender key of another certificate", "/v1/keys/smime-senders", map[string]string{"address": clinic, "certificate": pem(senderCert), "private_key": string(keystest.KeyPEM(t, keystest.RSAKey(1)))}, 422, "key-pair-mismatch", "certificate"},
		{"sender with address and domain", "/v1/keys/smime-senders", map[string]string{"address": clinic, "domain": "clinic.example", "certificate": pem(senderCert), "private_key": string(keystest.KeyPEM(t, senderKey))}, 422, "validation", "domain"},
	}
	for _, c := range bad {
		status, _, body := api.call("POST", c.path, owner, "application/json", keyBody(t, c.body))
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
		if strings.Contains(string(body), "BEGIN") || strings.Contains(string(body), patient) {
			t.Errorf("%s: the problem echoes the input: %s", c.name, body)
		}
	}

	// Good uploads.
	armored := pgp(patient, keystest.PGPSpec{})
	upload := func(path string, fields map[string]string, want int) keyAnswer {
		t.Helper()
		status, _, body := api.call("POST", path, owner, "application/json", keyBody(t, fields))
		var k keyAnswer
		if status != want || json.Unmarshal(body, &k) != nil || k.ID == "" || k.Status != "valid" {
			t.Fatalf("upload to %s: %d %s, want %d", path, status, body, want)
		}
		if strings.Contains(string(body), "PRIVATE KEY") || strings.Contains(string(body), "private_key") {
			t.Fatalf("upload answer holds the private key: %s", body)
		}
		return k
	}
	pgpKey := upload("/v1/keys/pgp", map[string]string{"address": "Rita@Patients.Example", "public_key": armored}, 201)
	if again := upload("/v1/keys/pgp", map[string]string{"address": patient, "public_key": armored}, 200); again.ID != pgpKey.ID {
		t.Errorf("re-upload got id %s, want %s", again.ID, pgpKey.ID)
	}
	good, _ := ca.Issue(t, keystest.Leaf{Emails: []string{patient}})
	smimeKey := upload("/v1/keys/smime", map[string]string{"address": patient, "certificate": pem(good)}, 201)
	sender := upload("/v1/keys/smime-senders", map[string]string{"domain": "clinic.example", "certificate": pem(senderCert),
		"private_key": string(keystest.KeyPEM(t, senderKey))}, 201)
	if sender.Address != nil || sender.Domain != "clinic.example" || sender.SignsAs != clinic {
		t.Errorf("domain sender = %+v", sender)
	}

	list := func(key, path string) keyList {
		t.Helper()
		status, _, body := api.call("GET", path, key, "", "")
		var l keyList
		if status != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		if strings.Contains(string(body), "PRIVATE KEY") {
			t.Fatalf("GET %s returns a private key", path)
		}
		return l
	}
	if l := list(owner, "/v1/keys/pgp?address=rita%40patients.example"); len(l.Data) != 1 || l.Data[0].ID != pgpKey.ID || *l.Data[0].Address != patient {
		t.Errorf("PGP list = %+v", l)
	}
	if l := list(owner, "/v1/keys/pgp?address=bob%40patients.example"); len(l.Data) != 0 {
		t.Errorf("filtered PGP list = %+v", l)
	}
	if l := list(owner, "/v1/keys/smime-senders"); len(l.Data) != 1 || l.Data[0].ID != sender.ID {
		t.Errorf("sender list = %+v", l)
	}
	if status, _, _ := api.call("GET", "/v1/keys/smime?account_id=x", owner, "", ""); status != 400 {
		t.Errorf("unknown list parameter: %d, want 400", status)
	}

	// Another account sees and deletes nothing.
	code, bout, berr := run(t, env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", bout, berr)
	}
	oc := parseCreds(bout)
	otherOwner := oc["client_id"] + ":" + oc["client_secret"]
	for path, id := range map[string]string{"/v1/keys/pgp": pgpKey.ID, "/v1/keys/smime": smimeKey.ID, "/v1/keys/smime-senders": sender.ID} {
		if l := list(otherOwner, path); len(l.Data) != 0 {
			t.Errorf("another account lists %s: %+v", path, l)
		}
		if status, _, _ := api.call("DELETE", path+"/"+id, otherOwner, "", ""); status != 404 {
			t.Errorf("another account deletes %s/%s: %d, want 404", path, id, status)
		}
	}
	// A key's id does not delete through another kind's route.
	if status, _, _ := api.call("DELETE", "/v1/keys/smime/"+pgpKey.ID, owner, "", ""); status != 404 {
		t.Errorf("PGP key deleted through the S/MIME route: %d", status)
	}
	if status, _, body := api.call("DELETE", "/v1/keys/pgp/"+pgpKey.ID, owner, "", ""); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	if l := list(owner, "/v1/keys/pgp"); len(l.Data) != 0 {
		t.Errorf("after delete: %+v", l)
	}

	// Audited, by fingerprint only.
	status, _, body := api.call("GET", "/v1/audit-events?action=key.pgp.uploaded", owner, "", "")
	if status != 200 || !strings.Contains(string(body), pgpKey.Fingerprint) || !strings.Contains(string(body), `"replaced":"true"`) {
		t.Errorf("audit of uploads: %d %s", status, body)
	}
	status, _, body = api.call("GET", "/v1/audit-events?action=key.pgp.deleted", owner, "", "")
	if status != 200 || !strings.Contains(string(body), pgpKey.ID) {
		t.Errorf("audit of the deletion: %d %s", status, body)
	}
	status, _, body = api.call("GET", "/v1/audit-events", owner, "", "")
	if status != 200 || strings.Contains(string(body), "BEGIN") || strings.Contains(string(body), patient) {
		t.Errorf("the audit log holds key material or the patient's address: %s", body)
	}
}

func TestAnUnreadableTrustFileStopsTheStartNamingTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(notPEM, []byte("no certificates\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for key, env := range map[string]string{
		"secureline.smime_trust_file": "SEALPOST_SECURELINE_SMIME_TRUST_FILE=" + filepath.Join(dir, "missing.pem"),
		"secureline.smime_crl_file":   "SEALPOST_SECURELINE_SMIME_CRL_FILE=" + notPEM,
	} {
		code, _, stderr := run(t, []string{env}, "serve", "--data-dir", filepath.Join(dir, key))
		if code == 0 || !strings.Contains(stderr, key) {
			t.Errorf("%s: exit %d, stderr %q; want a failure naming the key", key, code, stderr)
		}
	}
}

package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
)

// secureLineWorld is a running server whose delivery reaches two sinks by
// route: patient.example offers STARTTLS with a certificate trusted
// through delivery.tls_ca_file, plain.example offers no STARTTLS.
type secureLineWorld struct {
	bootstrapped
	verified, plain *smtptest.Sink
}

func serveSecureLine(t *testing.T) secureLineWorld {
	t.Helper()
	cert, certPEM, err := smtptest.Certificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	verified, err := smtptest.Start(&cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(verified.Close)
	plain, err := smtptest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "sink-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEALPOST_DATA_DIR=" + filepath.Join(dir, "data"),
		"SEALPOST_DELIVERY_ROUTES=patient.example=" + verified.Addr + ",plain.example=" + plain.Addr,
		"SEALPOST_DELIVERY_TLS_CA_FILE=" + ca, "SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example",
		"SEALPOST_SUBMISSION_ADDR=off", "SEALPOST_SUBMISSION_TLS_ADDR=off"}
	base, out, _ := startServe(t, env)
	creds := parseCreds(out.String())
	return secureLineWorld{bootstrapped: bootstrapped{env: env, base: base, creds: creds,
		owner: creds["client_id"] + ":" + creds["client_secret"], api: newAPIClient(t, base)}, verified: verified, plain: plain}
}

type preflightAnswer struct {
	Mode        string `json:"mode"`
	ContainsPHI bool   `json:"contains_phi"`
	Recipients  []struct {
		Address string   `json:"address"`
		Method  string   `json:"method"`
		Reasons []string `json:"reasons"`
	} `json:"recipients"`
}

func TestSecureLinePreflightThroughTheServer(t *testing.T) {
	w := serveSecureLine(t)
	api, owner := w.api, w.owner
	preflight := func(body string) preflightAnswer {
		t.Helper()
		status, _, out := api.call("POST", "/v1/secureline/preflight", owner, "application/json", body)
		var a preflightAnswer
		if status != 200 || json.Unmarshal(out, &a) != nil {
			t.Fatalf("preflight: %d %s", status, out)
		}
		return a
	}
	setMode := func(mode string) {
		t.Helper()
		if status, _, out := api.call("PUT", "/v1/secureline/settings", owner, "application/json",
			`{"mode":"`+mode+`","subject_tag":"[secure]"}`); status != 200 {
			t.Fatalf("set %s: %d %s", mode, status, out)
		}
	}
	body := `{"from":"Clinic <results@clinic.example>","recipients":["pat@patient.example","Kim <kim@plain.example>"],"contains_phi":true}`

	// The default mode is forced TLS: verified TLS where the MX offers it,
	// the portal where it does not.
	a := preflight(body)
	if a.Mode != "forced_tls" || !a.ContainsPHI || len(a.Recipients) != 2 {
		t.Fatalf("default preflight: %+v", a)
	}
	if r := a.Recipients[0]; r.Address != "pat@patient.example" || r.Method != "tls" || !strings.Contains(strings.Join(r.Reasons, " "), "STARTTLS verified") {
		t.Fatalf("verified sink: %+v", r)
	}
	if r := a.Recipients[1]; r.Address != "kim@plain.example" || r.Method != "portal" || !strings.Contains(strings.Join(r.Reasons, " "), "does not offer STARTTLS") {
		t.Fatalf("sink without STARTTLS under forced TLS: %+v", r)
	}

	// TLS-exclusive never falls back: the plain domain defers.
	setMode("tls_exclusive")
	a = preflight(body)
	if a.Recipients[0].Method != "tls" || a.Recipients[1].Method != "defer" {
		t.Fatalf("tls_exclusive: %+v", a)
	}

	// Opportunistic, content without PHI: opportunistic TLS; with an SSN
	// and a diagnosis code: the portal; the subject tag: end-to-end.
	setMode("opportunistic")
	clean := `{"from":"results@clinic.example","recipients":["kim@plain.example"],"subject":"Your appointment","text":"See you at 9:00."}`
	if a := preflight(clean); a.ContainsPHI || a.Recipients[0].Method != "tls_opportunistic" {
		t.Fatalf("opportunistic, clean content: %+v", a)
	}
	phi := `{"from":"results@clinic.example","recipients":["kim@plain.example"],"subject":"Results","text":"SSN 123-45-6789, diagnosis E11.9."}`
	if a := preflight(phi); !a.ContainsPHI || a.Recipients[0].Method != "portal" {
		t.Fatalf("opportunistic, PHI content: %+v", a)
	}
	tagged := `{"from":"results@clinic.example","recipients":["pat@patient.example"],"subject":"[SECURE] hello","contains_phi":false}`
	if a := preflight(tagged); a.Recipients[0].Method != "portal" {
		t.Fatalf("subject tag: %+v", a)
	}
	pinned := `{"from":"results@clinic.example","recipients":["pat@patient.example"],"encryption":"pgp","contains_phi":false}`
	if a := preflight(pinned); a.Recipients[0].Method != "refused" || !strings.Contains(strings.Join(a.Recipients[0].Reasons, " "), "no PGP key") {
		t.Fatalf("pgp pin without a key: %+v", a)
	}
	// The account's DLP policy raises the level: a rule forcing the
	// portal for patient.example beats its verified TLS.
	if status, _, out := api.call("PUT", "/v1/dlp-policy", owner, "application/json",
		`{"rules":[{"name":"patients-portal","conditions":{"recipient_domains":["patient.example"]},"action":"force_portal"},`+
			`{"name":"marketing-portal","conditions":{"kind":"marketing"},"action":"force_portal"},`+
			`{"name":"lab-tag-portal","conditions":{"tags":["lab-result"]},"action":"force_portal"}]}`); status != 200 {
		t.Fatalf("dlp policy: %d %s", status, out)
	}
	a = preflight(`{"from":"results@clinic.example","recipients":["pat@patient.example","kim@plain.example"],"contains_phi":false}`)
	if r := a.Recipients[0]; r.Method != "portal" || !strings.Contains(strings.Join(r.Reasons, " "), "forces the portal") {
		t.Fatalf("policy force_portal: %+v", r)
	}
	if r := a.Recipients[1]; r.Method != "tls_opportunistic" {
		t.Fatalf("the rule applies to its domain only: %+v", r)
	}
	// Rules on the message kind and tags see the preflight's kind and
	// tags, as they see a sent message's.
	for _, c := range []struct{ name, facts, method string }{
		{"transactional, untagged", `"kind":"transactional"`, "tls_opportunistic"},
		{"marketing", `"kind":"marketing"`, "portal"},
		{"tagged", `"tags":["reminder","lab-result"]`, "portal"},
		{"other tags", `"tags":["reminder"]`, "tls_opportunistic"},
	} {
		a := preflight(`{"from":"results@clinic.example","recipients":["kim@plain.example"],"contains_phi":false,` + c.facts + `}`)
		if r := a.Recipients[0]; r.Method != c.method {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
	if n := w.verified.Count() + w.plain.Count(); n != 0 {
		t.Fatalf("a preflight sent %d messages", n)
	}

	// Bad preflights are refused with the field named.
	for _, c := range []struct{ name, body, field string }{
		{"no recipients", `{"from":"results@clinic.example","recipients":[]}`, "recipients"},
		{"a bad recipient", `{"from":"results@clinic.example","recipients":["not an address"]}`, "recipients[0]"},
		{"no sender", `{"recipients":["pat@patient.example"]}`, "from"},
		{"an unknown method", `{"from":"results@clinic.example","recipients":["pat@patient.example"],"encryption":"rot13"}`, "encryption"},
		{"an unknown kind", `{"from":"results@clinic.example","recipients":["pat@patient.example"],"kind":"newsletter"}`, "kind"},
		{"an empty tag", `{"from":"results@clinic.example","recipients":["pat@patient.example"],"tags":["ok",""]}`, "tags[1]"},
	} {
		status, _, out := api.call("POST", "/v1/secureline/preflight", owner, "application/json", c.body)
		if status != 422 || !strings.Contains(string(out), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", c.name, status, out)
		}
	}
}

func TestSecureLineSettingsAPI(t *testing.T) {
	w := serveSecureLine(t)
	api, owner := w.api, w.owner
	status, _, out := api.call("GET", "/v1/secureline/settings", owner, "", "")
	if status != 200 || string(out) != `{"mode":"forced_tls","subject_tag":"[secure]","wkd_enabled":false}`+"\n" {
		t.Fatalf("defaults: %d %s", status, out)
	}
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"an unknown mode is refused", "application/json", `{"mode":"clear","subject_tag":"[secure]"}`, 422, `"field":"mode"`},
		{"a missing tag is refused", "application/json", `{"mode":"forced_tls"}`, 422, `"field":"subject_tag"`},
		{"a missing mode is refused", "application/json", `{"subject_tag":"[secure]"}`, 422, `"field":"mode"`},
		{"a tag with CR LF is refused", "application/json", `{"mode":"forced_tls","subject_tag":"[s]\r\nBcc: x@example.org"}`, 422, `"field":"subject_tag"`},
		{"an empty tag is refused", "application/json", `{"mode":"forced_tls","subject_tag":""}`, 422, `"field":"subject_tag"`},
		{"a tag over 32 bytes is refused", "application/json", `{"mode":"forced_tls","subject_tag":"` + strings.Repeat("x", 33) + `"}`, 422, `"field":"subject_tag"`},
		{"an unknown field is refused", "application/json", `{"mode":"forced_tls","subject_tag":"[secure]","extra":1}`, 400, "unknown-field"},
		{"a body that is not JSON is refused", "text/plain", `mode=forced_tls`, 415, "unsupported-media-type"},
		{"wkd_enabled must be a boolean", "application/json", `{"mode":"forced_tls","subject_tag":"[secure]","wkd_enabled":"yes"}`, 422, `"field":"wkd_enabled"`},
		{"wkd_enabled is taken", "application/json", `{"mode":"forced_tls","subject_tag":"[secure]","wkd_enabled":true}`, 200, `"wkd_enabled":true`},
		{"a valid change is taken, and wkd_enabled left out is false", "application/json", `{"mode":"portal_always","subject_tag":"ENCRYPT:"}`, 200, `"wkd_enabled":false`},
	}
	for _, tt := range tests {
		status, _, out := api.call("PUT", "/v1/secureline/settings", owner, tt.contentType, tt.body)
		if status != tt.status || !strings.Contains(string(out), tt.want) {
			t.Errorf("%s: %d %s", tt.name, status, out)
		}
	}
	if status, _, out := api.call("GET", "/v1/secureline/settings", owner, "", ""); status != 200 || !strings.Contains(string(out), `"subject_tag":"ENCRYPT:"`) {
		t.Fatalf("after the change: %d %s", status, out)
	}
	// The changes are audited, once each (refusals changed nothing).
	status, _, out = api.call("GET", "/v1/audit-events?action=secureline.settings_updated", owner, "", "")
	if status != 200 || strings.Count(string(out), `"action":"secureline.settings_updated"`) != 2 {
		t.Fatalf("audit: %d %s", status, out)
	}

	// Another account sees its own defaults, and its change stays its own.
	code, bout, berr := run(t, w.env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", bout, berr)
	}
	credsB := parseCreds(bout)
	ownerB := credsB["client_id"] + ":" + credsB["client_secret"]
	if status, _, out := api.call("GET", "/v1/secureline/settings", ownerB, "", ""); status != 200 || !strings.Contains(string(out), `"mode":"forced_tls"`) {
		t.Fatalf("other account: %d %s", status, out)
	}
	if status, _, out := api.call("PUT", "/v1/secureline/settings", ownerB, "application/json", `{"mode":"opportunistic","subject_tag":"[secure]"}`); status != 200 {
		t.Fatalf("other account's change: %d %s", status, out)
	}
	if status, _, out := api.call("GET", "/v1/secureline/settings", owner, "", ""); status != 200 || !strings.Contains(string(out), `"mode":"portal_always"`) {
		t.Fatalf("first account after the other's change: %d %s", status, out)
	}
	// The first account's preflight follows its own mode.
	status, _, out = api.call("POST", "/v1/secureline/preflight", owner, "application/json",
		`{"from":"results@clinic.example","recipients":["pat@patient.example"],"contains_phi":false}`)
	if status != 200 || !strings.Contains(string(out), `"method":"portal"`) {
		t.Fatalf("portal_always preflight: %d %s", status, out)
	}
}

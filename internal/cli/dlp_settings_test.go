package cli_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestDLPSettingsThroughTheServer(t *testing.T) {
	w := serveBootstrapped(t)
	api, owner := w.api, w.owner

	many := make([]string, 5001)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("term%d", i))
	}
	// Refusals are problem+json naming the field, and change nothing.
	for _, tc := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"unknown field is refused", `{"terms":[],"mrn_patterns":[],"keywords":[]}`, 400, "keywords"},
		{"unknown pattern field is refused", `{"terms":[],"mrn_patterns":[{"name":"a","pattern":"X\\d{6}","context":["mrn"]}]}`, 400, "context"},
		{"missing terms is refused", `{"mrn_patterns":[]}`, 422, "terms"},
		{"bad regexp is refused", `{"terms":[],"mrn_patterns":[{"name":"a","pattern":"X(\\d{6}"}]}`, 422, "mrn_patterns[0].pattern"},
		{"too many terms are refused", `{"terms":[` + strings.Join(many, ",") + `],"mrn_patterns":[]}`, 422, "terms"},
		{"short term is refused", `{"terms":["ok","x"],"mrn_patterns":[]}`, 422, "terms[1]"},
		{"zero threshold is refused", `{"terms":[],"mrn_patterns":[],"threshold":0}`, 422, "threshold"},
	} {
		status, h, body := api.call("PUT", "/v1/dlp-settings", owner, "application/json", tc.body)
		if status != tc.status || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") ||
			!strings.Contains(string(body), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s, want %d naming %s", tc.name, status, body, tc.status, tc.field)
		}
	}
	type settings struct {
		Terms       []string `json:"terms"`
		MRNPatterns []struct {
			Name, Pattern string
			Anywhere      bool
		} `json:"mrn_patterns"`
		Threshold float64 `json:"threshold"`
		Version   int64   `json:"version"`
		UpdatedAt *string `json:"updated_at"`
	}
	status, _, body := api.call("GET", "/v1/dlp-settings", owner, "", "")
	var got settings
	if status != 200 || json.Unmarshal(body, &got) != nil || got.Version != 0 || got.UpdatedAt != nil || got.Terms == nil {
		t.Fatalf("initial get: %d %s", status, body)
	}

	put := `{"terms":["zolgensma"],"mrn_patterns":[{"name":"chart","pattern":"QX\\d{7}","anywhere":true}],"threshold":0.4}`
	if status, _, body := api.call("PUT", "/v1/dlp-settings", owner, "application/json", put); status != 200 {
		t.Fatalf("put: %d %s", status, body)
	}
	status, _, body = api.call("GET", "/v1/dlp-settings", owner, "", "")
	if status != 200 || json.Unmarshal(body, &got) != nil || got.Version != 1 || got.Threshold != 0.4 || len(got.Terms) != 1 ||
		len(got.MRNPatterns) != 1 || got.MRNPatterns[0].Pattern != `QX\d{7}` || !got.MRNPatterns[0].Anywhere || got.UpdatedAt == nil {
		t.Fatalf("get after put: %d %s", status, body)
	}

	// A sender reads the settings but cannot change them.
	status, c := api.create(owner, `{"name":"ehr","role":"sender"}`)
	if status != 201 {
		t.Fatalf("create sender: %d", status)
	}
	sender := c.ID + ":" + c.Secret
	if status, _, _ := api.call("GET", "/v1/dlp-settings", sender, "", ""); status != 200 {
		t.Errorf("sender GET: %d", status)
	}
	if status, _, _ := api.call("PUT", "/v1/dlp-settings", sender, "application/json", put); status != 403 {
		t.Errorf("sender PUT: %d, want 403", status)
	}

	// The dry run scans with the account's pattern, and says so without
	// the matched text.
	status, _, body = api.call("POST", "/v1/dlp-policy/dry-run", sender, "application/json",
		`{"from":"lab@clinic.example","to":["pat@patient.example"],"subject":"File","text":"Your file QX4821937 is ready."}`)
	var ans dryRunAnswer
	if status != 200 || json.Unmarshal(body, &ans) != nil {
		t.Fatalf("dry run: %d %s", status, body)
	}
	if len(ans.Scan.Findings) != 1 || ans.Scan.Findings[0].Type != "mrn" || strings.Contains(string(body), "4821937") {
		t.Errorf("dry run: %s", body)
	}

	// The SecureLine preflight scans with the account's settings too, so
	// it agrees with acceptance.
	status, _, body = api.call("POST", "/v1/secureline/preflight", sender, "application/json",
		`{"from":"lab@clinic.example","recipients":["pat@patient.example"],"text":"Your file QX4821937 is ready."}`)
	var pre struct {
		FindingTypes []string `json:"finding_types"`
	}
	if status != 200 || json.Unmarshal(body, &pre) != nil || !slices.Contains(pre.FindingTypes, "mrn") || strings.Contains(string(body), "4821937") {
		t.Errorf("preflight with the account's settings: %d %s", status, body)
	}

	// Audited with counts, never the terms.
	status, _, body = api.call("GET", "/v1/audit-events", owner, "", "")
	if status != 200 || !strings.Contains(string(body), "dlp.settings_updated") || strings.Contains(string(body), "zolgensma") {
		t.Errorf("audit: %d %s", status, body)
	}
}

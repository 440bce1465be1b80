package policy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/policy"
)

func TestValidationNamesTheField(t *testing.T) {
	ok := policy.RuleInput{Name: "ok", Action: policy.Allow}
	with := func(f func(*policy.RuleInput)) []policy.RuleInput {
		r := ok
		f(&r)
		return []policy.RuleInput{ok, r}
	}
	for _, tc := range []struct {
		name  string
		rules []policy.RuleInput
		field string
	}{
		{"name required", with(func(r *policy.RuleInput) { r.Name = "" }), "rules[1].name"},
		{"name without control characters", with(func(r *policy.RuleInput) { r.Name = "a\nb" }), "rules[1].name"},
		{"unknown action", with(func(r *policy.RuleInput) { r.Action = "encrypt" }), "rules[1].action"},
		{"empty action", with(func(r *policy.RuleInput) { r.Action = "" }), "rules[1].action"},
		{"unknown min encryption", with(func(r *policy.RuleInput) {
			r.Action, r.MinEncryption = policy.RequireEncryption, "pgp"
		}), "rules[1].min_encryption"},
		{"min encryption on another action", with(func(r *policy.RuleInput) { r.MinEncryption = policy.EncryptionTLS }), "rules[1].min_encryption"},
		{"unknown finding type", with(func(r *policy.RuleInput) {
			r.Conditions.Findings = []policy.FindingCondition{{Type: "passport"}}
		}), "rules[1].conditions.findings[0].type"},
		{"finding type twice", with(func(r *policy.RuleInput) {
			r.Conditions.Findings = []policy.FindingCondition{{Type: dlp.SSN}, {Type: dlp.SSN}}
		}), "rules[1].conditions.findings[1].type"},
		{"negative min count", with(func(r *policy.RuleInput) {
			r.Conditions.Findings = []policy.FindingCondition{{Type: dlp.SSN, MinCount: -1}}
		}), "rules[1].conditions.findings[0].min_count"},
		{"confidence above one", with(func(r *policy.RuleInput) {
			r.Conditions.Findings = []policy.FindingCondition{{Type: dlp.SSN, MinConfidence: ptr(1.5)}}
		}), "rules[1].conditions.findings[0].min_confidence"},
		{"empty findings list", with(func(r *policy.RuleInput) { r.Conditions.Findings = []policy.FindingCondition{} }), "rules[1].conditions.findings"},
		{"score below zero", with(func(r *policy.RuleInput) { r.Conditions.MinScore = ptr(-0.1) }), "rules[1].conditions.min_score"},
		{"bare wildcard", with(func(r *policy.RuleInput) { r.Conditions.RecipientDomains = []string{"*"} }), "rules[1].conditions.recipient_domains[0]"},
		{"wildcard inside a label", with(func(r *policy.RuleInput) { r.Conditions.RecipientDomains = []string{"part*.example"} }), "rules[1].conditions.recipient_domains[0]"},
		{"two wildcards", with(func(r *policy.RuleInput) { r.Conditions.RecipientDomains = []string{"*.*.example"} }), "rules[1].conditions.recipient_domains[0]"},
		{"address as recipient domain", with(func(r *policy.RuleInput) { r.Conditions.RecipientDomains = []string{"a@b.example"} }), "rules[1].conditions.recipient_domains[0]"},
		{"single-label exact domain", with(func(r *policy.RuleInput) { r.Conditions.RecipientDomains = []string{"localhost"} }), "rules[1].conditions.recipient_domains[0]"},
		{"bad label", with(func(r *policy.RuleInput) { r.Conditions.RecipientDomains = []string{"-x.example"} }), "rules[1].conditions.recipient_domains[0]"},
		{"star at sender", with(func(r *policy.RuleInput) { r.Conditions.Senders = []string{"*@clinic.example"} }), "rules[1].conditions.senders[0]"},
		{"wildcard in local part", with(func(r *policy.RuleInput) { r.Conditions.Senders = []string{"bill*@clinic.example"} }), "rules[1].conditions.senders[0]"},
		{"sender without domain", with(func(r *policy.RuleInput) { r.Conditions.Senders = []string{"billing@"} }), "rules[1].conditions.senders[0]"},
		{"empty senders", with(func(r *policy.RuleInput) { r.Conditions.Senders = []string{} }), "rules[1].conditions.senders"},
		{"empty tag", with(func(r *policy.RuleInput) { r.Conditions.Tags = []string{""} }), "rules[1].conditions.tags[0]"},
		{"unknown kind", with(func(r *policy.RuleInput) { r.Conditions.Kind = "bulk" }), "rules[1].conditions.kind"},
		{"duplicate id", []policy.RuleInput{{ID: "r1", Name: "a", Action: policy.Allow}, {ID: "r1", Name: "b", Action: policy.Allow}}, "rules[1].id"},
		{"too many rules", make([]policy.RuleInput, policy.MaxRules+1), "rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Validate(tc.rules)
			var inv *policy.InvalidError
			if !errors.As(err, &inv) || !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("Validate = %v, want *InvalidError", err)
			}
			if inv.Issues[0].Field != tc.field {
				t.Errorf("field = %q (%s), want %q", inv.Issues[0].Field, inv.Issues[0].Message, tc.field)
			}
		})
	}
}

func TestValidationNormalises(t *testing.T) {
	out, err := policy.Validate([]policy.RuleInput{{Name: "r", Action: policy.RequireEncryption, Conditions: policy.Conditions{
		Findings:         []policy.FindingCondition{{Type: dlp.SSN}},
		Senders:          []string{"Billing@Clinic.EXAMPLE", "Clinic.Example"},
		RecipientDomains: []string{"*.Bücher.example", "*.gov"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	r := out[0]
	if !*r.Enabled || r.MinEncryption != policy.EncryptionTLS {
		t.Errorf("defaults: enabled %v, min %q", *r.Enabled, r.MinEncryption)
	}
	if f := r.Conditions.Findings[0]; f.MinCount != 1 || *f.MinConfidence != dlp.Likely {
		t.Errorf("finding defaults = %+v", f)
	}
	if got := strings.Join(r.Conditions.Senders, ","); got != "billing@clinic.example,clinic.example" {
		t.Errorf("senders = %s", got)
	}
	if got := strings.Join(r.Conditions.RecipientDomains, ","); got != "*.xn--bcher-kva.example,*.gov" {
		t.Errorf("recipient domains = %s", got)
	}
}

// TestRuleJSONRefusesUnknownFields checks that the wire form decodes
// strictly, as the API decodes it.
func TestRuleJSONRefusesUnknownFields(t *testing.T) {
	for _, body := range []string{
		`{"name":"r","action":"allow","priority":1}`,
		`{"name":"r","action":"allow","conditions":{"sender":"a@b.example"}}`,
		`{"name":"r","action":"allow","conditions":{"findings":[{"type":"ssn","count":2}]}}`,
	} {
		dec := json.NewDecoder(bytes.NewReader([]byte(body)))
		dec.DisallowUnknownFields()
		var r policy.RuleInput
		if err := dec.Decode(&r); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s: err = %v, want unknown field", body, err)
		}
	}
}

// FuzzPatterns holds the pattern parser to its promises: it never
// panics, and what it accepts it accepts again unchanged (canonical).
func FuzzPatterns(f *testing.F) {
	for _, s := range []string{"clinic.example", "*.clinic.example", "a@b.example", "*", "*@x.example", "bücher.example", "a..b", "-x.example", "*.gov"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, field := range []string{"senders", "recipient_domains"} {
			c := policy.Conditions{}
			if field == "senders" {
				c.Senders = []string{s}
			} else {
				c.RecipientDomains = []string{s}
			}
			out, err := policy.Validate([]policy.RuleInput{{Name: "r", Action: policy.Allow, Conditions: c}})
			if err != nil {
				continue
			}
			again, err := policy.Validate(out)
			if err != nil {
				t.Fatalf("%s %q: canonical form %+v refused: %v", field, s, out[0].Conditions, err)
			}
			a, _ := json.Marshal(out[0].Conditions)
			b, _ := json.Marshal(again[0].Conditions)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s %q: not canonical: %s then %s", field, s, a, b)
			}
		}
	})
}

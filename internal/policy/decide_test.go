package policy_test

import (
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/policy"
)

func ptr[T any](v T) *T { return &v }

// phiInput is a message with one SSN and one ICD-10 code, sent from the
// clinic's billing address.
func phiInput() policy.Input {
	fs := []dlp.Finding{{Type: dlp.SSN, Confidence: 0.99, Part: dlp.PartText}, {Type: dlp.ICD10, Confidence: 0.99, Part: dlp.PartText}}
	return policy.Input{AccountID: "acct", Sender: "billing@clinic.example", Tags: []string{"results"}, Kind: "transactional",
		Result: dlp.Result{Findings: fs, Counts: map[dlp.Type]int{dlp.SSN: 1, dlp.ICD10: 1}, Score: 1, ContainsPHI: true}}
}

// cleanInput is a message without findings.
func cleanInput() policy.Input {
	return policy.Input{AccountID: "acct", Sender: "news@clinic.example", Kind: "marketing",
		Result: dlp.Result{Findings: []dlp.Finding{}, Counts: map[dlp.Type]int{}, Score: 0.1}}
}

func compile(t *testing.T, rules ...policy.RuleInput) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(rules)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func TestFirstEnabledMatchingRuleWins(t *testing.T) {
	p := compile(t,
		policy.RuleInput{Name: "disabled block", Enabled: ptr(false), Action: policy.Block},
		policy.RuleInput{Name: "marketing only", Conditions: policy.Conditions{Kind: "marketing"}, Action: policy.Quarantine},
		policy.RuleInput{Name: "ssn to portal", Conditions: policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.SSN}}},
			Action: policy.ForcePortal},
		policy.RuleInput{Name: "catch all", Action: policy.Block},
	)
	d := p.Decide(phiInput(), "patient.example")
	if d.Action != policy.ForcePortal || d.RuleID != "rule-2" || d.MinEncryption != policy.EncryptionPortal {
		t.Fatalf("decision = %+v, want force_portal by rule-2", d)
	}
	if !strings.Contains(d.Reasons[0], `"ssn to portal" (position 2)`) {
		t.Errorf("reasons = %q", d.Reasons)
	}
	if d := p.Decide(cleanInput(), "patient.example"); d.RuleID != "rule-1" || d.Action != policy.Quarantine {
		t.Errorf("clean marketing decision = %+v, want quarantine by rule-1", d)
	}
}

func TestEachConditionKind(t *testing.T) {
	unscannable := cleanInput()
	unscannable.Result.Unscannable, unscannable.Result.ContainsPHI, unscannable.Result.Score = true, true, 1
	unscannable.Result.Reason = dlp.ReasonUnreadableType
	weak := cleanInput()
	weak.Result.Findings = []dlp.Finding{{Type: dlp.Phone, Confidence: 0.3}, {Type: dlp.Phone, Confidence: 0.3}}
	for _, tc := range []struct {
		name   string
		conds  policy.Conditions
		in     policy.Input
		domain string
		want   bool
	}{
		{"finding type present", policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.ICD10}}}, phiInput(), "x.example", true},
		{"finding type absent", policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.NPI}}}, phiInput(), "x.example", false},
		{"any of several finding types", policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.NPI}, {Type: dlp.SSN}}}, phiInput(), "x.example", true},
		{"min count not reached", policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.SSN, MinCount: 2}}}, phiInput(), "x.example", false},
		{"weak findings ignored by default", policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.Phone}}}, weak, "x.example", false},
		{"weak findings counted when asked", policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.Phone, MinCount: 2, MinConfidence: ptr(0.2)}}}, weak, "x.example", true},
		{"score at threshold", policy.Conditions{MinScore: ptr(1.0)}, phiInput(), "x.example", true},
		{"score below threshold", policy.Conditions{MinScore: ptr(0.5)}, cleanInput(), "x.example", false},
		{"contains phi true", policy.Conditions{ContainsPHI: ptr(true)}, phiInput(), "x.example", true},
		{"contains phi false on phi", policy.Conditions{ContainsPHI: ptr(false)}, phiInput(), "x.example", false},
		{"contains phi false on clean", policy.Conditions{ContainsPHI: ptr(false)}, cleanInput(), "x.example", true},
		{"unscannable counts as phi", policy.Conditions{ContainsPHI: ptr(true)}, unscannable, "x.example", true},
		{"unscannable", policy.Conditions{Unscannable: ptr(true)}, unscannable, "x.example", true},
		{"unscannable on scanned", policy.Conditions{Unscannable: ptr(true)}, phiInput(), "x.example", false},
		{"sender address exact", policy.Conditions{Senders: []string{"billing@clinic.example"}}, phiInput(), "x.example", true},
		{"sender address case-insensitive", policy.Conditions{Senders: []string{"Billing@Clinic.Example"}}, phiInput(), "x.example", true},
		{"sender other address", policy.Conditions{Senders: []string{"lab@clinic.example"}}, phiInput(), "x.example", false},
		{"sender domain", policy.Conditions{Senders: []string{"clinic.example"}}, phiInput(), "x.example", true},
		{"sender wildcard excludes apex", policy.Conditions{Senders: []string{"*.clinic.example"}}, phiInput(), "x.example", false},
		{"recipient domain exact", policy.Conditions{RecipientDomains: []string{"partner.example"}}, phiInput(), "partner.example", true},
		{"recipient domain case and trailing dot", policy.Conditions{RecipientDomains: []string{"partner.example"}}, phiInput(), "Partner.Example.", true},
		{"recipient wildcard subdomain", policy.Conditions{RecipientDomains: []string{"*.partner.example"}}, phiInput(), "mail.partner.example", true},
		{"recipient wildcard not apex", policy.Conditions{RecipientDomains: []string{"*.partner.example"}}, phiInput(), "partner.example", false},
		{"recipient wildcard not suffix lookalike", policy.Conditions{RecipientDomains: []string{"*.partner.example"}}, phiInput(), "evilpartner.example", false},
		{"recipient IDN compared as A-labels", policy.Conditions{RecipientDomains: []string{"bücher.example"}}, phiInput(), "xn--bcher-kva.example", true},
		{"no recipient domain given", policy.Conditions{RecipientDomains: []string{"partner.example"}}, phiInput(), "", false},
		{"tag any of", policy.Conditions{Tags: []string{"billing", "results"}}, phiInput(), "x.example", true},
		{"tag absent", policy.Conditions{Tags: []string{"billing"}}, phiInput(), "x.example", false},
		{"kind", policy.Conditions{Kind: "marketing"}, cleanInput(), "x.example", true},
		{"empty kind is transactional", policy.Conditions{Kind: "transactional"}, policy.Input{Result: dlp.Result{}}, "x.example", true},
		{"all conditions must hold", policy.Conditions{Kind: "transactional", Tags: []string{"billing"}}, phiInput(), "x.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := compile(t, policy.RuleInput{Name: "r", Conditions: tc.conds, Action: policy.Quarantine})
			d := p.Decide(tc.in, tc.domain)
			if got := d.RuleID == "rule-0"; got != tc.want {
				t.Fatalf("matched = %v, want %v (decision %+v)", got, tc.want, d)
			}
		})
	}
}

func TestAccountDefault(t *testing.T) {
	empty := compile(t)
	unscannable := cleanInput()
	unscannable.Result.Unscannable, unscannable.Result.Reason = true, dlp.ReasonOversize
	for _, tc := range []struct {
		name   string
		in     policy.Input
		action policy.Action
		min    policy.MinEncryption
		reason string
	}{
		{"phi requires verified tls", phiInput(), policy.RequireEncryption, policy.EncryptionTLS, "ssn ×1, icd10 ×1"},
		{"unscannable is treated as phi", unscannable, policy.RequireEncryption, policy.EncryptionTLS, "could not be fully scanned (oversize)"},
		{"clean mail is allowed", cleanInput(), policy.Allow, policy.EncryptionNone, "no PHI found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := empty.Decide(tc.in, "patient.example")
			if d.Action != tc.action || d.MinEncryption != tc.min || d.RuleID != "" {
				t.Fatalf("decision = %+v", d)
			}
			if !strings.Contains(strings.Join(d.Reasons, "; "), tc.reason) {
				t.Errorf("reasons %q lack %q", d.Reasons, tc.reason)
			}
		})
	}
}

func TestNoRuleSendsPHIInClearText(t *testing.T) {
	p := compile(t,
		policy.RuleInput{Name: "allow partners", Conditions: policy.Conditions{RecipientDomains: []string{"partner.example"}}, Action: policy.Allow},
		policy.RuleInput{Name: "quarantine rest", Action: policy.Quarantine},
	)
	for _, domain := range []string{"partner.example", "other.example"} {
		d := p.Decide(phiInput(), domain)
		if d.MinEncryption != policy.EncryptionTLS {
			t.Errorf("%s: %s with min %q, want the PHI floor tls", domain, d.Action, d.MinEncryption)
		}
	}
	if d := p.Decide(cleanInput(), "partner.example"); d.Action != policy.Allow || d.MinEncryption != policy.EncryptionNone {
		t.Errorf("clean allow = %+v, want allow with no minimum", d)
	}
	strong := compile(t, policy.RuleInput{Name: "e2e", Action: policy.RequireEncryption, MinEncryption: policy.EncryptionEndToEnd})
	if d := strong.Decide(phiInput(), "x.example"); d.MinEncryption != policy.EncryptionEndToEnd {
		t.Errorf("a stronger minimum was lowered: %+v", d)
	}
	block := compile(t, policy.RuleInput{Name: "block", Action: policy.Block})
	if d := block.Decide(phiInput(), "x.example"); d.Action != policy.Block || d.MinEncryption != policy.EncryptionNone {
		t.Errorf("block = %+v", d)
	}
}

func TestMinEncryptionOrder(t *testing.T) {
	order := []policy.MinEncryption{policy.EncryptionNone, policy.EncryptionTLS, policy.EncryptionEndToEnd, policy.EncryptionPortal}
	for i, a := range order {
		for j, b := range order {
			if got := a.AtLeast(b); got != (i >= j) {
				t.Errorf("%q.AtLeast(%q) = %v", a, b, got)
			}
		}
	}
	if policy.EncryptionTLS.Max(policy.EncryptionPortal) != policy.EncryptionPortal {
		t.Error("Max picks the weaker level")
	}
}

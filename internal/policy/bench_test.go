package policy_test

import (
	"fmt"
	"testing"

	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/policy"
)

// BenchmarkDecide measures one recipient's decision against a policy of
// 50 rules of which the last matches: the worst case of the send path.
func BenchmarkDecide(b *testing.B) {
	var rules []policy.RuleInput
	for i := range 49 {
		rules = append(rules, policy.RuleInput{Name: fmt.Sprintf("r%d", i), Action: policy.Block, Conditions: policy.Conditions{
			RecipientDomains: []string{fmt.Sprintf("*.partner%d.example", i)}, Tags: []string{"x"}}})
	}
	rules = append(rules, policy.RuleInput{Name: "last", Action: policy.RequireEncryption,
		Conditions: policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.SSN}}, Senders: []string{"clinic.example"}}})
	p, err := policy.Compile(rules)
	if err != nil {
		b.Fatal(err)
	}
	in := phiInput()
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(in, "mail.patient.example"); d.RuleID != "rule-49" {
			b.Fatal(d)
		}
	}
}

package policy_test

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/policy"
)

func ExamplePolicy_Decide() {
	p, err := policy.Compile([]policy.RuleInput{{
		Name:          "partners need end-to-end",
		Conditions:    policy.Conditions{RecipientDomains: []string{"partner.example"}, ContainsPHI: ptr(true)},
		Action:        policy.RequireEncryption,
		MinEncryption: policy.EncryptionEndToEnd,
	}})
	if err != nil {
		panic(err)
	}
	in := policy.Input{AccountID: "acct", Sender: "results@clinic.example", Result: dlp.Result{
		Findings: []dlp.Finding{{Type: dlp.SSN, Confidence: 0.99}}, Counts: map[dlp.Type]int{dlp.SSN: 1}, Score: 0.9, ContainsPHI: true}}
	for _, domain := range []string{"partner.example", "patient.example"} {
		d := p.Decide(in, domain)
		fmt.Printf("%s: %s %s (rule %q)\n", domain, d.Action, d.MinEncryption, d.RuleID)
	}
	// Output:
	// partner.example: require_encryption end_to_end (rule "rule-0")
	// patient.example: require_encryption tls (rule "")
}

package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/internal/dlp"
)

// Input is what a decision is made from: the message's envelope facts and
// its DLP scan. It holds no content.
type Input struct {
	AccountID string
	// Sender is the envelope or header From address.
	Sender string
	// RecipientDomains are every recipient's domain. Rules match the one
	// domain Evaluate is given; this list is informational.
	RecipientDomains []string
	Tags             []string
	// Kind is transactional or marketing ("" counts as transactional).
	Kind string
	// Findings are the scan's findings; nil means Result.Findings.
	Findings []dlp.Finding
	// Result is the scan: score, verdict, unscannable flag.
	Result dlp.Result
}

// Decision is what the policy says about one recipient's copy.
type Decision struct {
	Action Action `json:"action"`
	// MinEncryption is the least protection the copy may have; Allow
	// and RequireEncryption carry at least EncryptionTLS when the
	// message contains PHI.
	MinEncryption MinEncryption `json:"min_encryption"`
	// RuleID is the rule that fired; "" when the account default applied.
	RuleID string `json:"rule_id"`
	// Reasons explain the decision in words, naming finding types,
	// counts and the conditions that held, never matched text.
	Reasons []string `json:"reasons"`
}

// Policy is an account's rules, ready to decide. It is immutable and safe
// for concurrent use; load it once per message and decide per recipient.
type Policy struct {
	Rules []Rule
}

// HasPHI reports whether the input must be treated as carrying PHI: the
// scanner said so, or it could not read everything (fail closed).
func (in Input) HasPHI() bool { return in.Result.ContainsPHI || in.Result.Unscannable }

func (in Input) findings() []dlp.Finding {
	if in.Findings != nil {
		return in.Findings
	}
	return in.Result.Findings
}

// Decide evaluates the rules in order for a copy to recipientDomain and
// returns the first enabled match's decision, or the account default. An
// empty recipientDomain matches no recipient_domains condition.
func (p *Policy) Decide(in Input, recipientDomain string) Decision {
	domain := canonicalDomain(recipientDomain)
	for _, r := range p.Rules {
		if !r.Enabled {
			continue
		}
		held, ok := r.Conditions.match(in, domain)
		if !ok {
			continue
		}
		return ruleDecision(r, in, held)
	}
	return defaultDecision(in)
}

// ruleDecision is the decision of rule r, whose conditions held.
func ruleDecision(r Rule, in Input, held []string) Decision {
	d := Decision{Action: r.Action, RuleID: r.ID}
	d.Reasons = append(d.Reasons, fmt.Sprintf("rule %q (position %d) matched", r.Name, r.Position))
	if len(held) == 0 {
		d.Reasons = append(d.Reasons, "the rule has no conditions: it matches every message")
	}
	d.Reasons = append(d.Reasons, held...)
	switch r.Action {
	case RequireEncryption:
		d.MinEncryption = r.MinEncryption
		d.Reasons = append(d.Reasons, "action require_encryption: at least "+describeLevel(r.MinEncryption))
	case ForcePortal:
		d.MinEncryption = EncryptionPortal
		d.Reasons = append(d.Reasons, "action force_portal: delivered through the secure portal only")
	case Quarantine:
		d.Reasons = append(d.Reasons, "action quarantine: held for review before anything is sent")
	case Block:
		d.Reasons = append(d.Reasons, "action block: the message is refused")
	case Allow:
		d.Reasons = append(d.Reasons, "action allow")
	}
	return applyFloor(d, in)
}

// defaultDecision applies when no rule matched: PHI (or content that
// could not be scanned) needs verified TLS at least; anything else is
// allowed. HIPAA's transmission security safeguard (45 CFR
// 164.312(e)(1)) is why the default never sends PHI in clear text.
func defaultDecision(in Input) Decision {
	d := Decision{Action: Allow, Reasons: []string{"no rule matched: the account default applies"}}
	if in.HasPHI() {
		d.Action = RequireEncryption
		d.MinEncryption = EncryptionTLS
		d.Reasons = append(d.Reasons, phiSummary(in), "the default for PHI: at least verified TLS")
		return d
	}
	d.Reasons = append(d.Reasons, fmt.Sprintf("no PHI found (risk score %.2f): allowed", in.Result.Score))
	return d
}

// applyFloor raises a sending decision for a message with PHI to
// verified TLS at least, whatever the rule said: no rule can send PHI in
// clear text. A quarantined message keeps the floor for its release.
func applyFloor(d Decision, in Input) Decision {
	if !in.HasPHI() || d.Action == Block || d.MinEncryption.AtLeast(EncryptionTLS) {
		return d
	}
	d.MinEncryption = EncryptionTLS
	d.Reasons = append(d.Reasons, phiSummary(in), "PHI is never sent in clear text: raised to at least verified TLS")
	return d
}

// phiSummary says why the input counts as PHI, by type and count.
func phiSummary(in Input) string {
	if in.Result.Unscannable {
		reason := string(in.Result.Reason)
		if reason == "" {
			reason = "unknown"
		}
		return "the message could not be fully scanned (" + reason + "): treated as PHI"
	}
	return fmt.Sprintf("the message contains PHI (risk score %.2f: %s)", in.Result.Score, countSummary(in.Result.Counts))
}

// countSummary lists finding counts by type in dlp.Types order, such as
// "ssn ×1, icd10 ×2".
func countSummary(counts map[dlp.Type]int) string {
	var parts []string
	for _, t := range dlp.Types {
		if n := counts[t]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s ×%d", t, n))
		}
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}

func describeLevel(m MinEncryption) string {
	switch m {
	case EncryptionTLS:
		return "verified TLS"
	case EncryptionEndToEnd:
		return "end-to-end encryption (PGP, S/MIME or the portal)"
	case EncryptionPortal:
		return "the secure portal"
	}
	return "no encryption"
}

// match reports whether every condition holds for the input and the
// recipient's canonical domain, and describes each that held.
func (c Conditions) match(in Input, domain string) ([]string, bool) {
	var held []string
	if c.Findings != nil {
		why, ok := matchFindings(c.Findings, in.findings())
		if !ok {
			return nil, false
		}
		held = append(held, why)
	}
	if c.MinScore != nil {
		if in.Result.Score < *c.MinScore {
			return nil, false
		}
		held = append(held, fmt.Sprintf("risk score %.2f is at least %.2f", in.Result.Score, *c.MinScore))
	}
	if c.ContainsPHI != nil {
		if in.HasPHI() != *c.ContainsPHI {
			return nil, false
		}
		held = append(held, fmt.Sprintf("contains PHI is %t", *c.ContainsPHI))
	}
	if c.Unscannable != nil {
		if in.Result.Unscannable != *c.Unscannable {
			return nil, false
		}
		held = append(held, fmt.Sprintf("unscannable is %t", *c.Unscannable))
	}
	if c.Senders != nil {
		p, ok := firstMatch(c.Senders, func(p string) bool { return senderMatches(p, in.Sender) })
		if !ok {
			return nil, false
		}
		held = append(held, "sender matches "+p)
	}
	if c.RecipientDomains != nil {
		p, ok := firstMatch(c.RecipientDomains, func(p string) bool { return domain != "" && domainMatches(p, domain) })
		if !ok {
			return nil, false
		}
		held = append(held, "recipient domain matches "+p)
	}
	if c.Tags != nil {
		t, ok := firstMatch(c.Tags, func(t string) bool { return slices.Contains(in.Tags, t) })
		if !ok {
			return nil, false
		}
		held = append(held, fmt.Sprintf("tagged %q", t))
	}
	if c.Kind != "" {
		kind := in.Kind
		if kind == "" {
			kind = KindTransactional
		}
		if kind != c.Kind {
			return nil, false
		}
		held = append(held, "kind is "+c.Kind)
	}
	return held, true
}

// matchFindings holds when any finding condition does.
func matchFindings(conds []FindingCondition, findings []dlp.Finding) (string, bool) {
	for _, fc := range conds {
		minConf := dlp.Likely
		if fc.MinConfidence != nil {
			minConf = *fc.MinConfidence
		}
		n := 0
		for _, f := range findings {
			if f.Type == fc.Type && f.Confidence >= minConf {
				n++
			}
		}
		if n >= max(fc.MinCount, 1) {
			return fmt.Sprintf("%d %s finding(s) with confidence at least %.2f (rule asks for %d)", n, fc.Type, minConf, max(fc.MinCount, 1)), true
		}
	}
	return "", false
}

func firstMatch(list []string, ok func(string) bool) (string, bool) {
	for _, v := range list {
		if ok(v) {
			return v, true
		}
	}
	return "", false
}

// Compile validates rules and returns them as a Policy without storing
// them, for callers and tests that decide from rules they hold. A rule
// without an id gets "rule-<position>".
func Compile(rules []RuleInput) (*Policy, error) {
	valid, err := Validate(rules)
	if err != nil {
		return nil, err
	}
	p := &Policy{Rules: make([]Rule, len(valid))}
	for i, r := range valid {
		id := r.ID
		if id == "" {
			id = fmt.Sprintf("rule-%d", i)
		}
		p.Rules[i] = Rule{ID: id, Position: i, Name: r.Name, Description: r.Description, Enabled: *r.Enabled,
			Conditions: r.Conditions, Action: r.Action, MinEncryption: r.MinEncryption}
	}
	return p, nil
}

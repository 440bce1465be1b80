package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/mail"
)

// DryRunMessage is a message as POST /v1/messages takes it, reduced to
// what a decision reads.
type DryRunMessage struct {
	From        string
	To, Cc, Bcc []string
	Subject     string
	Text        string
	HTML        string
	Attachments []dlp.Attachment
	Tags        []string
	Kind        string
}

// MaxDryRunRecipients bounds the recipients of one dry run.
const MaxDryRunRecipients = 1000

// FindingSummary is what a scan found of one type: how many, how sure,
// where. It never holds matched text or offsets.
type FindingSummary struct {
	Type          dlp.Type       `json:"type"`
	Count         int            `json:"count"`
	MaxConfidence float64        `json:"max_confidence"`
	Parts         []dlp.PartKind `json:"parts"`
}

// ScanSummary is a dry run's view of the DLP scan.
type ScanSummary struct {
	Score       float64          `json:"score"`
	ContainsPHI bool             `json:"contains_phi"`
	Unscannable bool             `json:"unscannable"`
	Reason      dlp.Reason       `json:"reason,omitempty"`
	Problems    []dlp.Problem    `json:"problems"`
	Findings    []FindingSummary `json:"findings"`
	Truncated   bool             `json:"truncated"`
}

// RecipientDecision is the decision for one recipient and the rule that
// made it.
type RecipientDecision struct {
	Address string `json:"address"`
	Domain  string `json:"domain"`
	// RuleName and RulePosition name the rule that fired; empty and nil
	// when the account default applied.
	RuleName     string `json:"rule_name"`
	RulePosition *int   `json:"rule_position"`
	Decision
}

// DryRunResult explains what the policy would do with a message.
type DryRunResult struct {
	Scan       ScanSummary         `json:"scan"`
	Recipients []RecipientDecision `json:"recipients"`
}

// DryRun scans m with the account's DLP scanner and evaluates the account's policy
// for each distinct recipient, in order. Nothing is stored or sent.
// Invalid addresses, kind or tags are *mail.FieldError values naming the
// field.
func (e *Engine) DryRun(ctx context.Context, accountID string, m DryRunMessage) (DryRunResult, error) {
	from, err := mail.ParseAddress("from", m.From)
	if err != nil {
		return DryRunResult{}, err
	}
	rcpts, err := dryRunRecipients(m)
	if err != nil {
		return DryRunResult{}, err
	}
	if err := ValidateMessageFacts(m.Kind, m.Tags); err != nil {
		return DryRunResult{}, err
	}
	p, err := e.Load(ctx, accountID)
	if err != nil {
		return DryRunResult{}, err
	}
	scanner := e.scanner
	if e.perAcct != nil {
		if scanner, err = e.perAcct.Scanner(ctx, accountID); err != nil {
			return DryRunResult{}, err
		}
	}
	res := scanner.Scan(ctx, dlp.Message{Subject: m.Subject, Text: m.Text, HTML: m.HTML, Attachments: m.Attachments})
	in := Input{AccountID: accountID, Sender: from.Addr(), Tags: m.Tags, Kind: m.Kind, Result: res}
	for _, r := range rcpts {
		in.RecipientDomains = append(in.RecipientDomains, r.Domain)
	}
	out := DryRunResult{Scan: summarise(res), Recipients: []RecipientDecision{}}
	byID := map[string]Rule{}
	for _, r := range p.Rules {
		byID[r.ID] = r
	}
	for _, r := range rcpts {
		d := p.Decide(in, r.Domain)
		rd := RecipientDecision{Address: r.Addr(), Domain: r.Domain, Decision: d}
		if rule, ok := byID[d.RuleID]; ok && d.RuleID != "" {
			pos := rule.Position
			rd.RuleName, rd.RulePosition = rule.Name, &pos
		}
		out.Recipients = append(out.Recipients, rd)
	}
	return out, nil
}

func dryRunRecipients(m DryRunMessage) ([]mail.Address, error) {
	var out []mail.Address
	seen := map[string]bool{}
	for _, list := range []struct {
		field string
		addrs []string
	}{{"to", m.To}, {"cc", m.Cc}, {"bcc", m.Bcc}} {
		for i, s := range list.addrs {
			a, err := mail.ParseAddress(fmt.Sprintf("%s[%d]", list.field, i), s)
			if err != nil {
				return nil, err
			}
			if key := strings.ToLower(a.Addr()); !seen[key] {
				seen[key] = true
				out = append(out, a)
			}
		}
	}
	switch {
	case len(out) == 0:
		return nil, &mail.FieldError{Field: "to", Message: "at least one recipient is required"}
	case len(out) > MaxDryRunRecipients:
		return nil, &mail.FieldError{Field: "to", Message: fmt.Sprintf("at most %d recipients", MaxDryRunRecipients)}
	}
	return out, nil
}

// validateMessageFacts checks kind and tags as package messages does.
// ValidateMessageFacts checks the facts a policy reads besides content:
// the message kind and its tags, bounded as a message's are.
func ValidateMessageFacts(kind string, tags []string) error {
	if kind != "" && kind != KindTransactional && kind != KindMarketing {
		return &mail.FieldError{Field: "kind", Message: "must be transactional or marketing"}
	}
	if len(tags) > 10 {
		return &mail.FieldError{Field: "tags", Message: "at most 10 tags"}
	}
	for i, t := range tags {
		if n := utf8.RuneCountInString(t); n == 0 || n > maxTagLen || !printable(t) {
			return &mail.FieldError{Field: fmt.Sprintf("tags[%d]", i), Message: "1 to 100 printable characters"}
		}
	}
	return nil
}

// summarise reduces a scan result to types, counts, confidences and
// parts, in dlp.Types order.
func summarise(res dlp.Result) ScanSummary {
	s := ScanSummary{Score: res.Score, ContainsPHI: res.ContainsPHI, Unscannable: res.Unscannable, Reason: res.Reason,
		Problems: res.Problems, Truncated: res.Truncated, Findings: []FindingSummary{}}
	if s.Problems == nil {
		s.Problems = []dlp.Problem{}
	}
	for _, t := range dlp.Types {
		n := res.Counts[t]
		if n == 0 {
			continue
		}
		fs := FindingSummary{Type: t, Count: n, Parts: []dlp.PartKind{}}
		for _, f := range res.Findings {
			if f.Type != t {
				continue
			}
			fs.MaxConfidence = max(fs.MaxConfidence, f.Confidence)
			if !slices.Contains(fs.Parts, f.Part) {
				fs.Parts = append(fs.Parts, f.Part)
			}
		}
		s.Findings = append(s.Findings, fs)
	}
	return s
}

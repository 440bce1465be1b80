package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/dlp"
)

// Action is what a rule does with a message it matches.
type Action string

// Actions.
const (
	// Allow sends the message. It never lowers the PHI floor: a message
	// with PHI still needs at least verified TLS.
	Allow Action = "allow"
	// RequireEncryption raises the least protection to MinEncryption.
	RequireEncryption Action = "require_encryption"
	// ForcePortal delivers through the secure portal only.
	ForcePortal Action = "force_portal"
	// Quarantine holds the message until a reviewer releases or rejects it.
	Quarantine Action = "quarantine"
	// Block refuses the message with an error to the sender.
	Block Action = "block"
)

// Actions lists every action, in documentation order.
var Actions = []Action{Allow, RequireEncryption, ForcePortal, Quarantine, Block}

// MinEncryption is the least protection a recipient's copy may have.
// The levels are ordered: "" < tls < end_to_end < portal.
type MinEncryption string

// Encryption levels.
const (
	// EncryptionNone asks for nothing (opportunistic TLS at most).
	EncryptionNone MinEncryption = ""
	// EncryptionTLS is TLS with a verified certificate (or an MTA-STS
	// policy in enforce mode) to the recipient's MX.
	EncryptionTLS MinEncryption = "tls"
	// EncryptionEndToEnd is PGP, S/MIME or the portal: the content is
	// protected beyond the hop to the MX.
	EncryptionEndToEnd MinEncryption = "end_to_end"
	// EncryptionPortal is the portal only.
	EncryptionPortal MinEncryption = "portal"
)

var encryptionRank = map[MinEncryption]int{EncryptionNone: 0, EncryptionTLS: 1, EncryptionEndToEnd: 2, EncryptionPortal: 3}

// Valid reports whether m is a known level.
func (m MinEncryption) Valid() bool { _, ok := encryptionRank[m]; return ok }

// AtLeast reports whether m is at least as strong as o.
func (m MinEncryption) AtLeast(o MinEncryption) bool { return encryptionRank[m] >= encryptionRank[o] }

// Max returns the stronger of m and o.
func (m MinEncryption) Max(o MinEncryption) MinEncryption {
	if m.AtLeast(o) {
		return m
	}
	return o
}

// Kinds of message a rule can match (package messages' values).
const (
	KindTransactional = "transactional"
	KindMarketing     = "marketing"
)

// FindingCondition holds when the message has at least MinCount findings
// of Type, each with a confidence of at least MinConfidence.
type FindingCondition struct {
	Type dlp.Type `json:"type"`
	// MinCount defaults to 1.
	MinCount int `json:"min_count,omitempty"`
	// MinConfidence defaults to dlp.Likely (0.5): weaker signals are
	// ignored unless a rule asks for them.
	MinConfidence *float64 `json:"min_confidence,omitempty"`
}

// Conditions are a rule's tests. Every condition given must hold (AND);
// within a list, any entry may match (OR). No conditions: the rule
// matches every message.
type Conditions struct {
	// Findings holds when any of the finding conditions does.
	Findings []FindingCondition `json:"findings,omitempty"`
	// MinScore holds when the risk score is at least this.
	MinScore *float64 `json:"min_score,omitempty"`
	// ContainsPHI holds when the scanner's verdict equals it (an
	// unscannable message contains PHI).
	ContainsPHI *bool `json:"contains_phi,omitempty"`
	// Unscannable holds when the scan's unscannable flag equals it.
	Unscannable *bool `json:"unscannable,omitempty"`
	// Senders are addresses ("billing@clinic.example"), domains
	// ("clinic.example") or subdomain wildcards ("*.clinic.example").
	Senders []string `json:"senders,omitempty"`
	// RecipientDomains are domains or subdomain wildcards.
	RecipientDomains []string `json:"recipient_domains,omitempty"`
	// Tags holds when the message carries any of these tags.
	Tags []string `json:"tags,omitempty"`
	// Kind is transactional or marketing.
	Kind string `json:"kind,omitempty"`
}

// Rule is one stored rule.
type Rule struct {
	ID            string        `json:"id"`
	Position      int           `json:"position"`
	Name          string        `json:"name"`
	Description   string        `json:"description"`
	Enabled       bool          `json:"enabled"`
	Conditions    Conditions    `json:"conditions"`
	Action        Action        `json:"action"`
	MinEncryption MinEncryption `json:"min_encryption"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
}

// RuleInput is a rule as a client writes it (the DLPRuleInput schema).
type RuleInput struct {
	// ID keeps an existing rule's id (and so the references quarantine
	// entries hold); empty assigns a new one.
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Enabled     *bool      `json:"enabled"` // default true
	Conditions  Conditions `json:"conditions"`
	Action      Action     `json:"action"`
	// MinEncryption is only for require_encryption (default tls).
	MinEncryption MinEncryption `json:"min_encryption"`
}

// Limits on a policy.
const (
	MaxRules        = 100
	MaxListEntries  = 100
	maxNameLen      = 100
	maxDescLen      = 500
	maxTagLen       = 100
	maxFindingCount = 10000
)

// Issue names one invalid field by its JSON path ("rules[2].action").
type Issue struct {
	Field   string
	Message string
}

// InvalidError lists every invalid field of a policy. Messages name the
// rule broken, never the value.
type InvalidError struct {
	Issues []Issue
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("dlp policy: %d invalid field(s), first %s: %s", len(e.Issues), e.Issues[0].Field, e.Issues[0].Message)
}

// ErrInvalid is matched (errors.Is) by every *InvalidError.
var ErrInvalid = errors.New("dlp policy: invalid")

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// issues collects validation problems.
type issues []Issue

func (is *issues) add(field, format string, args ...any) {
	*is = append(*is, Issue{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Validate checks rules and returns them normalised (defaults filled in,
// patterns lower-cased), or an *InvalidError naming every bad field. IDs
// are not checked against the store here; Replace does that.
func Validate(rules []RuleInput) ([]RuleInput, error) {
	var is issues
	if len(rules) > MaxRules {
		is.add("rules", "at most %d rules", MaxRules)
		return nil, &InvalidError{Issues: is}
	}
	out := make([]RuleInput, len(rules))
	seen := map[string]int{}
	for i, r := range rules {
		f := fmt.Sprintf("rules[%d]", i)
		if r.ID != "" {
			if j, dup := seen[r.ID]; dup {
				is.add(f+".id", "the same id as rules[%d]", j)
			}
			seen[r.ID] = i
		}
		out[i] = validateRule(f, r, &is)
	}
	if len(is) > 0 {
		return nil, &InvalidError{Issues: is}
	}
	return out, nil
}

func validateRule(f string, r RuleInput, is *issues) RuleInput {
	if r.ID != "" && (len(r.ID) > 64 || !printable(r.ID)) {
		is.add(f+".id", "must be the id of a rule of this policy")
	}
	if n := utf8.RuneCountInString(r.Name); n == 0 || n > maxNameLen || !printable(r.Name) {
		is.add(f+".name", "required: 1 to %d printable characters", maxNameLen)
	}
	if utf8.RuneCountInString(r.Description) > maxDescLen || !utf8.ValidString(r.Description) {
		is.add(f+".description", "at most %d characters", maxDescLen)
	}
	if r.Enabled == nil {
		yes := true
		r.Enabled = &yes
	}
	switch {
	case !slices.Contains(Actions, r.Action):
		is.add(f+".action", "must be allow, require_encryption, force_portal, quarantine or block")
	case r.Action == RequireEncryption:
		if r.MinEncryption == EncryptionNone {
			r.MinEncryption = EncryptionTLS
		} else if !r.MinEncryption.Valid() {
			is.add(f+".min_encryption", "must be tls, end_to_end or portal")
		}
	case r.MinEncryption != EncryptionNone:
		is.add(f+".min_encryption", "only require_encryption takes a minimum encryption")
	}
	r.Conditions = validateConditions(f+".conditions", r.Conditions, is)
	return r
}

func validateConditions(f string, c Conditions, is *issues) Conditions {
	if c.Findings != nil {
		c.Findings = validateFindings(f+".findings", c.Findings, is)
	}
	if c.MinScore != nil && !unitInterval(*c.MinScore) {
		is.add(f+".min_score", "must be between 0 and 1")
	}
	if c.Senders != nil {
		c.Senders = validateList(f+".senders", c.Senders, is, normaliseSender)
	}
	if c.RecipientDomains != nil {
		c.RecipientDomains = validateList(f+".recipient_domains", c.RecipientDomains, is, normaliseDomainPattern)
	}
	if c.Tags != nil {
		c.Tags = validateList(f+".tags", c.Tags, is, func(t string) (string, string) {
			if n := utf8.RuneCountInString(t); n == 0 || n > maxTagLen || !printable(t) {
				return "", fmt.Sprintf("1 to %d printable characters", maxTagLen)
			}
			return t, ""
		})
	}
	if c.Kind != "" && c.Kind != KindTransactional && c.Kind != KindMarketing {
		is.add(f+".kind", "must be transactional or marketing")
	}
	return c
}

func validateFindings(f string, in []FindingCondition, is *issues) []FindingCondition {
	if len(in) == 0 {
		is.add(f, "must not be empty; leave the condition out to match any content")
		return in
	}
	out := make([]FindingCondition, len(in))
	seen := map[dlp.Type]bool{}
	for i, fc := range in {
		ff := fmt.Sprintf("%s[%d]", f, i)
		switch {
		case !slices.Contains(dlp.Types, fc.Type):
			is.add(ff+".type", "must be a DLP finding type (see docs/dlp.md)")
		case seen[fc.Type]:
			is.add(ff+".type", "listed twice")
		}
		seen[fc.Type] = true
		if fc.MinCount == 0 {
			fc.MinCount = 1
		} else if fc.MinCount < 1 || fc.MinCount > maxFindingCount {
			is.add(ff+".min_count", "must be between 1 and %d", maxFindingCount)
		}
		if fc.MinConfidence == nil {
			c := dlp.Likely
			fc.MinConfidence = &c
		} else if !unitInterval(*fc.MinConfidence) {
			is.add(ff+".min_confidence", "must be between 0 and 1")
		}
		out[i] = fc
	}
	return out
}

// validateList checks a non-empty list of at most MaxListEntries, each
// entry normalised by norm (which returns a message when it is invalid).
func validateList(f string, in []string, is *issues, norm func(string) (string, string)) []string {
	switch {
	case len(in) == 0:
		is.add(f, "must not be empty; leave the condition out to match any")
		return in
	case len(in) > MaxListEntries:
		is.add(f, "at most %d entries", MaxListEntries)
		return in
	}
	out := make([]string, len(in))
	for i, v := range in {
		n, msg := norm(v)
		if msg != "" {
			is.add(fmt.Sprintf("%s[%d]", f, i), "%s", msg)
		}
		out[i] = n
	}
	return out
}

func unitInterval(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 1 }

func printable(s string) bool {
	if !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

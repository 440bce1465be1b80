package secureline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sealpost/sealpost/internal/dlp"
)

// PolicyInput is what the account's policy sees of a message.
type PolicyInput struct {
	From string
	// Kind is transactional or marketing ("" counts as transactional);
	// Tags are the message's tags. Rules may match on either.
	Kind string
	Tags []string
	// Domains are the recipients' domains, each once.
	Domains     []string
	ContainsPHI bool
	// Scan is the DLP result when content was scanned (nil otherwise).
	Scan *dlp.Result
}

// PolicyFunc evaluates the account's policy (package policy, adapted in
// package app) once per message, answering per recipient domain; a
// domain missing from the answer gets the zero verdict (allow).
type PolicyFunc func(ctx context.Context, accountID string, in PolicyInput) (map[string]PolicyVerdict, error)

// MaxPreflightRecipients bounds one preflight, as a message's recipients
// are bounded.
const MaxPreflightRecipients = 100

// probeParallelism bounds the domains probed at once by one preflight.
const probeParallelism = 8

// PreflightRequest asks which method each recipient would get now.
type PreflightRequest struct {
	From string
	// Recipients are addresses, already validated, domain lower case.
	Recipients []Recipient
	// Pin is the message's "encryption" field.
	Pin string
	// Kind and Tags are the message's, as policy rules see them.
	Kind string
	Tags []string
	// ContainsPHI is what the sender says; nil: unknown.
	ContainsPHI *bool
	// Subject, when set, is checked for the account's subject tag.
	Subject string
	// Content, when set, is scanned for PHI (Options.Scanner).
	Content *dlp.Message
}

// Recipient is an address and its domain.
type Recipient struct {
	Address string
	Domain  string
}

// RecipientDecision is one recipient's answer.
type RecipientDecision struct {
	Address string   `json:"address"`
	Method  Method   `json:"method"`
	Reasons []string `json:"reasons"`
}

// PreflightResult answers a preflight. It holds no message content.
type PreflightResult struct {
	Mode          Mode   `json:"mode"`
	ContainsPHI   bool   `json:"contains_phi"`
	PHIReason     string `json:"phi_reason"`
	SubjectTagged bool   `json:"subject_tagged"`
	// FindingTypes are the DLP finding types, when content was scanned.
	FindingTypes []string            `json:"finding_types"`
	Recipients   []RecipientDecision `json:"recipients"`
}

// Preflight answers, for each recipient, the method the message would
// get now and why, without storing or sending anything.
func (s *Service) Preflight(ctx context.Context, accountID string, req PreflightRequest) (PreflightResult, error) {
	if !ValidPin(req.Pin) {
		return PreflightResult{}, &FieldError{Field: "encryption", Message: "must be auto, tls, pgp, smime or portal"}
	}
	if len(req.Recipients) == 0 || len(req.Recipients) > MaxPreflightRecipients {
		return PreflightResult{}, &FieldError{Field: "recipients", Message: fmt.Sprintf("must hold 1 to %d addresses", MaxPreflightRecipients)}
	}
	st, err := s.Settings(ctx, accountID)
	if err != nil {
		return PreflightResult{}, err
	}
	res := PreflightResult{Mode: st.Mode, FindingTypes: []string{}}
	scan := s.phi(ctx, accountID, req, &res)
	if req.Subject != "" {
		_, res.SubjectTagged = StripSubjectTag(req.Subject, st.SubjectTag)
	}
	domains := s.probeAll(ctx, req.Recipients)
	var verdicts map[string]PolicyVerdict
	if s.opts.Policy != nil {
		verdicts, err = s.opts.Policy(ctx, accountID, PolicyInput{From: req.From, Kind: req.Kind, Tags: req.Tags, Domains: domains, ContainsPHI: res.ContainsPHI, Scan: scan})
		if err != nil {
			return PreflightResult{}, fmt.Errorf("evaluate policy: %w", err)
		}
	}
	for _, r := range req.Recipients {
		caps, err := s.Capabilities(ctx, accountID, r.Address, r.Domain)
		if err != nil {
			return PreflightResult{}, err
		}
		d := Decide(Input{Mode: st.Mode, Pin: req.Pin, ContainsPHI: res.ContainsPHI, Policy: verdicts[r.Domain],
			SubjectTagged: res.SubjectTagged, Caps: caps})
		res.Recipients = append(res.Recipients, RecipientDecision{Address: r.Address, Method: d.Method, Reasons: d.Reasons})
	}
	return res, nil
}

// phi settles whether the message counts as containing PHI, failing
// closed: the sender's word or the scan saying so makes it PHI, and
// without either it is PHI too.
func (s *Service) phi(ctx context.Context, accountID string, req PreflightRequest, res *PreflightResult) *dlp.Result {
	var scan *dlp.Result
	if req.Content != nil {
		scanner := s.opts.Scanner
		if s.opts.Scanners != nil {
			sc, err := s.opts.Scanners.Scanner(ctx, accountID)
			if err != nil {
				res.ContainsPHI, res.PHIReason = true, "the account's DLP settings could not be read: treated as containing PHI"
				return nil
			}
			scanner = sc
		}
		if scanner == nil {
			res.ContainsPHI, res.PHIReason = true, "content was given but this server scans none: treated as containing PHI"
			return nil
		}
		r := scanner.Scan(ctx, *req.Content)
		scan = &r
		for t := range r.Counts {
			res.FindingTypes = append(res.FindingTypes, string(t))
		}
		slices.Sort(res.FindingTypes)
	}
	said := req.ContainsPHI
	switch {
	case said != nil && *said:
		res.ContainsPHI, res.PHIReason = true, "the sender says the message contains PHI"
	case scan != nil && scan.Unscannable:
		res.ContainsPHI, res.PHIReason = true, "DLP could not scan the content ("+string(scan.Reason)+"): treated as containing PHI"
	case scan != nil && scan.ContainsPHI:
		res.ContainsPHI, res.PHIReason = true, "DLP found likely PHI ("+strings.Join(res.FindingTypes, ", ")+")"
	case scan != nil:
		res.PHIReason = "DLP found no PHI"
	case said != nil:
		res.PHIReason = "the sender says the message contains no PHI"
	default:
		res.ContainsPHI, res.PHIReason = true, "neither content nor contains_phi was given: treated as containing PHI"
	}
	return scan
}

// probeAll warms the TLS cache for the recipients' domains in parallel,
// so a preflight to many domains takes about as long as its slowest, and
// returns the domains, each once.
func (s *Service) probeAll(ctx context.Context, rs []Recipient) []string {
	seen := map[string]bool{}
	var domains []string
	sem := make(chan struct{}, probeParallelism)
	var wg sync.WaitGroup
	for _, r := range rs {
		if seen[r.Domain] {
			continue
		}
		seen[r.Domain] = true
		domains = append(domains, r.Domain)
		wg.Add(1)
		sem <- struct{}{}
		go func(domain string) {
			defer wg.Done()
			defer func() { <-sem }()
			s.tls.get(ctx, domain)
		}(r.Domain)
	}
	wg.Wait()
	return domains
}

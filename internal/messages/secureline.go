package messages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
)

// The acceptance step of SecureLine (docs/secureline.md, "At
// acceptance"): every accepted message is scanned by DLP, the account's
// policy decides per recipient domain, and the encryption decision picks
// a method per recipient, recorded in message_recipients.enc_method in
// the transaction that accepts the message. A block refuses the send; a
// quarantine holds the recipients for review; a portal recipient is
// deposited in the portal there and then and never reaches delivery.

// SecureLine is what the acceptance step needs. A nil *SecureLine in
// Options keeps the send path as it was before SecureLine (no scan, no
// decision, enc_method "").
type SecureLine struct {
	// Scanner scans every message (required): the scanner for accounts
	// without settings of their own, or for all when Scanners is nil.
	Scanner *dlp.Scanner
	// Scanners gives the account's scanner built from its DLP settings
	// (terms, record number formats; *dlpsettings.Service); nil: Scanner.
	Scanners policy.Scanners
	// Policies holds the accounts' DLP rules; nil: the account default
	// (require TLS for PHI) for every message.
	Policies *policy.Engine
	// Decisions gives the accounts' modes and subject tags and the keys
	// on file for a recipient (its own TLS probe is not used: acceptance
	// never touches the network, see tlsAtDelivery).
	Decisions *secureline.Service
	// Quarantine records holds; nil refuses a quarantine decision.
	Quarantine *policy.QuarantineStore
	// Portal takes the recipients decided for the portal; nil or not
	// enabled refuses a portal decision.
	Portal Portal
}

// Portal is the recipient portal as the acceptance step uses it
// (*portal.Service).
type Portal interface {
	Enabled() bool
	DepositTx(ctx context.Context, tx store.Tx, d portal.Deposit) (portal.Deposited, error)
}

// Errors of the acceptance step.
var (
	// ErrBlocked: a DLP policy rule blocks the message; nothing is stored.
	ErrBlocked = errors.New("messages: a DLP policy rule blocks the message")
	// ErrEncryptionUnavailable: a recipient cannot be given the
	// protection the message needs (a pin it cannot receive, or the
	// portal is not available); nothing is stored.
	ErrEncryptionUnavailable = errors.New("messages: the encryption the message needs is not available for a recipient")
)

// BlockedError names the rule that blocked a message.
type BlockedError struct{ RuleID string }

func (e *BlockedError) Error() string {
	if e.RuleID == "" {
		return ErrBlocked.Error()
	}
	return ErrBlocked.Error() + " (rule " + e.RuleID + ")"
}

// Unwrap makes a BlockedError an ErrBlocked.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// EncryptionError names the recipient by position (such as "to[1]"),
// never by address, and why its encryption is unavailable.
type EncryptionError struct{ Field, Reason string }

func (e *EncryptionError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes an EncryptionError an ErrEncryptionUnavailable.
func (e *EncryptionError) Unwrap() error { return ErrEncryptionUnavailable }

// tlsAtDelivery is the TLS capability assumed at acceptance: probing
// the recipient's MX would stall the 202, so TLS counts as available
// and delivery verifies it on the connection it sends over, falling
// back to the portal (or deferring under tls_exclusive) when it fails
// (secureline.Fallback).
const tlsAtDelivery = "to be verified by delivery before sending"

// portalActorID is the system actor the portal sends its notices as.
const portalActorID = "portal"

// screened is the acceptance step's outcome for one message.
type screened struct {
	rcpts []rcptScreen
	// hold is the first quarantine decision, recorded with the message
	// when recipient holdAt is inserted.
	hold   policy.Decision
	holdAt int
}

// rcptScreen is one recipient's outcome.
type rcptScreen struct {
	decision    secureline.Decision // recorded; a quarantined recipient's is its method on release
	quarantined bool
}

// portalNotice reports whether the actor and request are one of the
// portal's own notices (link and code mails): they carry no PHI, pin
// "tls", and must never be routed to the portal again.
func portalNotice(actor account.Actor, tags []string, pin string) bool {
	return actor.Principal.ActorKind == auth.ActorSystem && actor.Principal.ActorID == portalActorID &&
		pin == secureline.PinTLS && slices.Contains(tags, "sealpost-portal")
}

// screenRequest runs the acceptance step for an API message, after
// prepare composed it (and each recipient's own draft when it has one).
func (s *Service) screenRequest(ctx context.Context, actor account.Actor, req Request, p *prepared, cache *requestCache) error {
	sl := s.opts.SecureLine
	if sl == nil {
		return nil
	}
	if !secureline.ValidPin(req.Encryption) {
		return &mail.FieldError{Field: "encryption", Message: "must be auto, tls, pgp, smime or portal"}
	}
	if portalNotice(actor, req.Tags, req.Encryption) {
		sc := &screened{holdAt: -1}
		for range p.recipients {
			sc.rcpts = append(sc.rcpts, rcptScreen{decision: secureline.Decision{Method: secureline.MethodNotice,
				Reasons: []string{"a portal notice carries no PHI: the TLS policy alone applies"}}})
		}
		p.screen = sc
		return nil
	}
	scanner, err := cache.scannerOf(ctx, sl, actor.Principal.AccountID)
	if err != nil {
		return err
	}
	base := scanner.Scan(ctx, dlpMessage(p.draft))
	scans := make([]dlp.Result, len(p.recipients))
	for i, r := range p.recipients {
		scans[i] = base
		if r.draft != nil && p.personal != nil && len(p.personal.perRcpt) > 0 {
			// Personalised content differs per recipient: scan what each gets.
			scans[i] = scanner.Scan(ctx, dlpMessage(*r.draft))
		}
	}
	sc, err := s.screen(ctx, actor.Principal.AccountID, p, req.Tags, req.Encryption, false, scans, cache)
	if err != nil {
		return err
	}
	p.screen = sc
	return nil
}

// screen decides every recipient of p from its scan, refusing the
// message when a rule blocks it or a recipient's encryption cannot be
// had.
func (s *Service) screen(ctx context.Context, accountID string, p *prepared, tags []string, pin string, tagged bool,
	scans []dlp.Result, cache *requestCache) (*screened, error) {
	sl := s.opts.SecureLine
	settings, err := cache.settingsOf(ctx, sl, accountID)
	if err != nil {
		return nil, err
	}
	rules, err := cache.rulesOf(ctx, sl, accountID)
	if err != nil {
		return nil, err
	}
	var domains []string
	for _, r := range p.recipients {
		if !slices.Contains(domains, r.addr.Domain) {
			domains = append(domains, r.addr.Domain)
		}
	}
	sc := &screened{holdAt: -1}
	var refusal error
	for i, r := range p.recipients {
		in := policy.Input{AccountID: accountID, Sender: p.from.Addr(), RecipientDomains: domains, Tags: tags, Kind: p.kind, Result: scans[i]}
		pd := rules.Decide(in, r.addr.Domain)
		if pd.Action == policy.Block {
			return nil, &BlockedError{RuleID: pd.RuleID}
		}
		caps := secureline.Capabilities{}
		if sl.Decisions != nil {
			var err error
			if caps, err = sl.Decisions.Capabilities(ctx, accountID, r.addr.Addr(), r.addr.Domain); err != nil {
				return nil, err
			}
		}
		caps.TLS, caps.TLSDetail = true, tlsAtDelivery
		sin := secureline.Input{Mode: settings.Mode, Pin: pin, ContainsPHI: in.HasPHI(), SubjectTagged: tagged, Caps: caps,
			Policy: verdict(pd)}
		rs := rcptScreen{}
		if pd.Action == policy.Quarantine {
			// The recipient waits for review; what it gets on release is
			// decided now, with the policy's floor for a released message.
			held := secureline.Decide(sin)
			sin.Policy = secureline.PolicyVerdict{Action: secureline.ActionAllow, MinEncryption: secureline.Minimum(pd.MinEncryption)}
			if in.HasPHI() && sin.Policy.MinEncryption == secureline.MinNone {
				sin.Policy.MinEncryption = secureline.MinTLS
			}
			rs.quarantined = true
			rs.decision = secureline.Decide(sin)
			rs.decision.Reasons = append(held.Reasons, append([]string{"on release:"}, rs.decision.Reasons...)...)
			if sc.holdAt < 0 {
				sc.hold, sc.holdAt = pd, i
			}
		} else {
			rs.decision = secureline.Decide(sin)
		}
		rs.decision.Reasons = append([]string{phiReason(scans[i])}, rs.decision.Reasons...)
		if err := s.usable(rs, i, r, sl); err != nil && refusal == nil {
			refusal = err
		}
		if rs.decision.Method == secureline.MethodDefer {
			// Delivery defers a tls recipient without verified TLS under
			// tls_exclusive (secureline.Fallback): it waits queued as tls.
			rs.decision.Method = secureline.MethodTLS
		}
		sc.rcpts = append(sc.rcpts, rs)
	}
	if refusal != nil {
		return nil, refusal
	}
	return sc, nil
}

// usable refuses a decision the send cannot carry out.
func (s *Service) usable(rs rcptScreen, i int, r recipient, sl *SecureLine) error {
	field := fmt.Sprintf("%s[%d]", r.kind, r.kindIndex)
	switch rs.decision.Method {
	case secureline.MethodRefused:
		return &EncryptionError{Field: field, Reason: lastReason(rs.decision)}
	case secureline.MethodPortal:
		if sl.Portal == nil || !sl.Portal.Enabled() {
			return &EncryptionError{Field: field, Reason: "the recipient must receive the message through the portal, and this server's portal takes no messages (http.public_url is not set)"}
		}
	}
	if rs.quarantined && sl.Quarantine == nil {
		return fmt.Errorf("messages: a DLP rule quarantines recipient %d but no quarantine store is configured", i)
	}
	return nil
}

func lastReason(d secureline.Decision) string {
	if len(d.Reasons) == 0 {
		return "refused"
	}
	return d.Reasons[len(d.Reasons)-1]
}

// verdict converts a policy decision for secureline.
func verdict(d policy.Decision) secureline.PolicyVerdict {
	return secureline.PolicyVerdict{Action: string(d.Action), MinEncryption: secureline.Minimum(d.MinEncryption), RuleID: d.RuleID}
}

// phiReason says what DLP found, by type only (never matched text).
func phiReason(r dlp.Result) string {
	switch {
	case r.Unscannable:
		return "DLP could not scan the message (" + string(r.Reason) + "): treated as containing PHI"
	case r.ContainsPHI:
		types := make([]string, 0, len(r.Counts))
		for t := range r.Counts {
			types = append(types, string(t))
		}
		slices.Sort(types)
		return fmt.Sprintf("DLP found likely PHI (%s; score %.2f)", strings.Join(types, ", "), r.Score)
	}
	return fmt.Sprintf("DLP found no PHI (score %.2f)", r.Score)
}

// dlpMessage is the content of a draft as DLP reads it.
func dlpMessage(d mail.Draft) dlp.Message {
	m := dlp.Message{Subject: d.Subject, Text: d.Text, HTML: d.HTML}
	for _, a := range d.Attachments {
		m.Attachments = append(m.Attachments, dlp.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content})
	}
	return m
}

// applyScreen records recipient i's decision in the accepting
// transaction and carries out what happens there: a quarantine hold, or
// the portal deposit. It returns the recipient's state.
func (s *Service) applyScreen(ctx context.Context, tx store.Tx, actor account.Actor, p *prepared, i int, state string) (string, error) {
	sc := p.screen
	if sc == nil {
		return state, nil
	}
	accountID := actor.Principal.AccountID
	rs := sc.rcpts[i]
	if err := secureline.RecordTx(ctx, tx, accountID, p.id, i, rs.decision); err != nil {
		return "", err
	}
	if state == StateSuppressed {
		return state, nil
	}
	if rs.quarantined {
		return s.quarantine(ctx, tx, accountID, p, i)
	}
	if rs.decision.Method == secureline.MethodPortal && state == StateQueued {
		return StateDelivered, s.deposit(ctx, tx, actor, p, i)
	}
	// A scheduled portal recipient waits queued as "portal": delivery
	// deposits it when it is due, so the notice does not go out early.
	return state, nil
}

// quarantine holds the message (once) and the recipient.
func (s *Service) quarantine(ctx context.Context, tx store.Tx, accountID string, p *prepared, i int) (string, error) {
	if sc := p.screen; sc.holdAt == i {
		if _, err := s.opts.SecureLine.Quarantine.Hold(ctx, tx, accountID, p.id, sc.hold); err != nil {
			return "", err
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE message_recipients SET state = $1 WHERE account_id = $2 AND message_id = $3 AND rcpt_index = $4",
		StateQuarantined, accountID, p.id, i); err != nil {
		return "", fmt.Errorf("quarantine recipient: %w", err)
	}
	return StateQuarantined, recordEvent(ctx, tx, accountID, p.id, i, StateQuarantined, s.opts.Now().UTC(), nil)
}

// deposit puts recipient i's copy in the portal and marks it delivered
// there.
func (s *Service) deposit(ctx context.Context, tx store.Tx, actor account.Actor, p *prepared, i int) error {
	r := p.recipients[i]
	d := portal.Deposit{AccountID: actor.Principal.AccountID, MessageID: p.id, RcptIndex: i, Recipient: r.addr.Addr(),
		Sender: p.from.String(), Actor: portal.Actor{Kind: string(actor.Principal.ActorKind), ID: actor.Principal.ActorID,
			SourceIP: actor.SourceIP, RequestID: actor.RequestID}}
	switch {
	case p.portalRaw != nil:
		d.Raw = p.portalRaw
	case r.draft != nil:
		d.Content = portalContent(*r.draft)
	default:
		d.Content = portalContent(p.draft)
	}
	if _, err := s.opts.SecureLine.Portal.DepositTx(ctx, tx, d); err != nil {
		return fmt.Errorf("portal deposit: %w", err)
	}
	return markPortalDelivered(ctx, tx, actor.Principal.AccountID, p.id, i, s.opts.Now())
}

func portalContent(d mail.Draft) portal.Content {
	c := portal.Content{Subject: d.Subject, Text: d.Text, HTML: d.HTML}
	for _, a := range d.Attachments {
		c.Attachments = append(c.Attachments, portal.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content})
	}
	return c
}

// stripSubjectTag removes the account's relay subject tag from h's
// Subject (secureline.StripSubjectTag on the decoded, unfolded value) and
// reports whether it was there; the tag raises the message to end to end.
func (s *Service) stripSubjectTag(ctx context.Context, accountID string, h *textproto.Header, cache *requestCache) (bool, error) {
	sl := s.opts.SecureLine
	if sl == nil || sl.Decisions == nil || !h.Has("Subject") {
		return false, nil
	}
	st, err := cache.settingsOf(ctx, sl, accountID)
	if err != nil {
		return false, err
	}
	// RFC 5322 §2.2.3: unfolding removes each CRLF that precedes white space.
	subject := decodeWords(strings.ReplaceAll(h.Get("Subject"), "\r\n", ""))
	stripped, tagged := secureline.StripSubjectTag(subject, st.SubjectTag)
	if !tagged {
		return false, nil
	}
	if strings.ContainsAny(stripped, "\r\n") {
		return false, &mail.FieldError{Field: "Subject", Message: "the subject must not contain line breaks"}
	}
	if isPrintableASCII(stripped) {
		h.Set("Subject", stripped)
	} else {
		h.Set("Subject", mime.QEncoding.Encode("utf-8", stripped)) // RFC 2047
	}
	return true, nil
}

func isPrintableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// screenRaw runs the acceptance step for a relayed message: DLP reads
// the message as stored (ScanRaw), and a portal recipient gets it whole.
func (s *Service) screenRaw(ctx context.Context, accountID string, p *prepared, raw []byte, tagged bool, cache *requestCache) error {
	sl := s.opts.SecureLine
	if sl == nil {
		return nil
	}
	scanner, err := cache.scannerOf(ctx, sl, accountID)
	if err != nil {
		return err
	}
	scan := scanner.ScanRaw(ctx, bytes.NewReader(raw))
	scans := make([]dlp.Result, len(p.recipients))
	for i := range scans {
		scans[i] = scan
	}
	sc, err := s.screen(ctx, accountID, p, nil, "", tagged, scans, cache)
	if err != nil {
		return err
	}
	p.screen, p.portalRaw = sc, raw
	return nil
}

// requestCache holds what one request reads once for all its messages
// (a batch is one account's): the account's settings, DLP rules and
// DLP scanner.
type requestCache struct {
	settings *secureline.Settings
	rules    *policy.Policy
	scanner  *dlp.Scanner
}

func (c *requestCache) scannerOf(ctx context.Context, sl *SecureLine, accountID string) (*dlp.Scanner, error) {
	if c.scanner == nil {
		c.scanner = sl.Scanner
		if sl.Scanners != nil {
			sc, err := sl.Scanners.Scanner(ctx, accountID)
			if err != nil {
				c.scanner = nil
				return nil, err
			}
			c.scanner = sc
		}
	}
	return c.scanner, nil
}

func (c *requestCache) settingsOf(ctx context.Context, sl *SecureLine, accountID string) (secureline.Settings, error) {
	if c.settings == nil {
		st := secureline.DefaultSettings
		if sl.Decisions != nil {
			var err error
			if st, err = sl.Decisions.Settings(ctx, accountID); err != nil {
				return secureline.Settings{}, err
			}
		}
		c.settings = &st
	}
	return *c.settings, nil
}

func (c *requestCache) rulesOf(ctx context.Context, sl *SecureLine, accountID string) (*policy.Policy, error) {
	if c.rules == nil {
		c.rules = &policy.Policy{}
		if sl.Policies != nil {
			rules, err := sl.Policies.Load(ctx, accountID)
			if err != nil {
				c.rules = nil
				return nil, err
			}
			c.rules = rules
		}
	}
	return c.rules, nil
}

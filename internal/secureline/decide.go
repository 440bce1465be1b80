// Package secureline decides, for every recipient of a message, how the
// message is protected on its way: S/MIME (RFC 8551) when Sealpost holds a
// valid certificate for the recipient, PGP/MIME (RFC 3156) when it holds a
// public key, TLS verified for the recipient's MX (RFC 3207, or an MTA-STS
// policy in enforce mode, RFC 8461) when the MX offers it, and the secure
// portal otherwise, under the account's encryption mode, the sender's pin
// and the policy's minimum. It also owns the per-account mode settings,
// the TLS capability cache and the record of each decision.
//
// It does not encrypt, deliver or scan: packages pgpmime, smime, portal,
// delivery and dlp do, and the composition root (package app) joins them.
// The decision core (Decide, Fallback, StripSubjectTag) is pure: no
// network, no store, no clock.
package secureline

import (
	"fmt"
	"strings"
)

// Method is how a recipient's copy is protected, or, for the last four
// values, why it is not sent now.
type Method string

// Methods, strongest first, then the outcomes that send nothing now.
const (
	// MethodSMIME encrypts (and signs) to the recipient's certificate.
	MethodSMIME Method = "smime"
	// MethodPGP encrypts to the recipient's OpenPGP key (PGP/MIME).
	MethodPGP Method = "pgp"
	// MethodTLS delivers only over TLS verified for the MX host name.
	MethodTLS Method = "tls"
	// MethodOpportunisticTLS delivers over TLS when the MX offers it,
	// verified or not, and in clear text otherwise (RFC 7435): only for
	// mail without PHI under the opportunistic mode.
	MethodOpportunisticTLS Method = "tls_opportunistic"
	// MethodPortal keeps the message in the portal and mails a
	// notification that carries no PHI.
	MethodPortal Method = "portal"
	// MethodNotice is the portal's own link and code notices: they carry
	// no PHI and exist for recipients whose servers may lack verified
	// TLS, so they take the TLS policy alone (as mail without a decision)
	// and are never routed to the portal (whose notice would come back
	// here, without end). Only the acceptance step records it, for the
	// portal's system actor.
	MethodNotice Method = "notice"

	// MethodDefer: the recipient cannot receive the only method allowed
	// (TLS under tls_exclusive) now; delivery retries and bounces at the
	// end of the recipient's lifetime, never sending otherwise.
	MethodDefer Method = "defer"
	// MethodRefused: the message pins a method the recipient cannot
	// receive or the policy does not allow; the send is refused.
	MethodRefused Method = "refused"
	// MethodBlocked: a policy rule blocks the message.
	MethodBlocked Method = "blocked"
	// MethodQuarantined: a policy rule holds the message for review.
	MethodQuarantined Method = "quarantined"
)

// Sends reports whether m sends the message (a method, not an outcome).
func (m Method) Sends() bool {
	switch m {
	case MethodSMIME, MethodPGP, MethodTLS, MethodOpportunisticTLS, MethodPortal, MethodNotice:
		return true
	}
	return false
}

// Mode is an account's encryption mode.
type Mode string

// Modes, as healthcare senders know them.
const (
	// ModeOpportunistic sends mail without PHI over opportunistic TLS
	// when the recipient can do nothing stronger; mail with PHI (or not
	// known to be without) is treated as under ModeForcedTLS.
	ModeOpportunistic Mode = "opportunistic"
	// ModeForcedTLS requires verified TLS at least, falling back to PGP,
	// S/MIME or the portal (whichever is strongest) when the recipient's
	// MX cannot do verified TLS.
	ModeForcedTLS Mode = "forced_tls"
	// ModeTLSExclusive sends only over verified TLS, never falling back
	// by itself: a recipient without it is deferred (and bounced at the
	// end of its lifetime). A stronger method the sender pins or a
	// policy requires is still honoured.
	ModeTLSExclusive Mode = "tls_exclusive"
	// ModePortalAlways sends every message through the portal.
	ModePortalAlways Mode = "portal_always"
)

// DefaultMode is the mode of an account that never chose one: every
// message is at least verified TLS or goes to the portal.
const DefaultMode = ModeForcedTLS

// Modes lists the valid modes.
var Modes = []Mode{ModeOpportunistic, ModeForcedTLS, ModeTLSExclusive, ModePortalAlways}

// Valid reports whether m is one of Modes.
func (m Mode) Valid() bool {
	for _, v := range Modes {
		if m == v {
			return true
		}
	}
	return false
}

// Minimum is the least protection a message needs, the policy's
// MinEncryption (package policy) as a string.
type Minimum string

// Minimums, weakest first.
const (
	MinNone     Minimum = ""           // no floor
	MinTLS      Minimum = "tls"        // verified TLS or stronger
	MinEndToEnd Minimum = "end_to_end" // S/MIME, PGP or the portal
	MinPortal   Minimum = "portal"     // the portal only
)

func (m Minimum) rank() int {
	switch m {
	case MinTLS:
		return 1
	case MinEndToEnd:
		return 2
	case MinPortal:
		return 3
	}
	return 0
}

// Valid reports whether m is a known minimum.
func (m Minimum) Valid() bool { return m == MinNone || m.rank() > 0 }

// meets reports whether method protects at least as much as min asks.
func meets(method Method, min Minimum) bool {
	switch method {
	case MethodPortal:
		return true
	case MethodSMIME, MethodPGP:
		return min.rank() <= MinEndToEnd.rank()
	case MethodTLS:
		return min.rank() <= MinTLS.rank()
	case MethodOpportunisticTLS:
		return min == MinNone
	}
	return false
}

// Pins are the values of a message's "encryption" field.
const (
	PinAuto   = "auto"
	PinTLS    = "tls"
	PinPGP    = "pgp"
	PinSMIME  = "smime"
	PinPortal = "portal"
)

// ValidPin reports whether p is a value of "encryption" ("" is auto).
func ValidPin(p string) bool {
	switch p {
	case "", PinAuto, PinTLS, PinPGP, PinSMIME, PinPortal:
		return true
	}
	return false
}

// Policy actions (package policy's Action values).
const (
	ActionAllow             = "allow"
	ActionRequireEncryption = "require_encryption"
	ActionForcePortal       = "force_portal"
	ActionQuarantine        = "quarantine"
	ActionBlock             = "block"
)

// PolicyVerdict is what the account's policy decided for the message
// (package policy's Decision, converted at the wiring point).
type PolicyVerdict struct {
	Action        string  // one of the Action values; "" is allow
	MinEncryption Minimum // the floor the rule sets
	RuleID        string  // the rule that fired, for the reasons
}

// Capabilities are what a recipient can receive now.
type Capabilities struct {
	// SMIME: Sealpost holds a valid certificate for the address.
	SMIME bool
	// PGP: Sealpost holds a usable public key for the address;
	// PGPSource says where it came from ("" when not known).
	PGP       bool
	PGPSource KeySource
	// TLS: the domain's MX offers STARTTLS with a certificate that
	// verifies for its name, or the domain has an MTA-STS policy in
	// enforce mode. TLSDetail says which, or why not.
	TLS       bool
	TLSDetail string
}

// Input is one recipient's case.
type Input struct {
	Mode Mode
	// Pin is the message's "encryption" field ("" or "auto": decide).
	Pin string
	// ContainsPHI: DLP found PHI, or could not tell (it fails closed).
	ContainsPHI bool
	// Policy is the policy's verdict (zero: allow, no floor).
	Policy PolicyVerdict
	// SubjectTagged: the relay subject carried the account's tag, which
	// raises the floor to end_to_end.
	SubjectTagged bool
	Caps          Capabilities
}

// Decision is the method for one recipient and why, in order. Reasons
// name rules, modes and capabilities, never message content.
type Decision struct {
	Method  Method   `json:"method"`
	Reasons []string `json:"reasons"`
}

// Decide picks the strongest method the recipient can receive that meets
// the message's minimum, under the account's mode. It is pure.
func Decide(in Input) Decision {
	d := &Decision{}
	switch in.Policy.Action {
	case ActionBlock:
		d.add("%s blocks the message", ruleName(in.Policy.RuleID))
		return d.with(MethodBlocked)
	case ActionQuarantine:
		d.add("%s holds the message for review", ruleName(in.Policy.RuleID))
		return d.with(MethodQuarantined)
	}
	mode := in.Mode
	if !mode.Valid() {
		mode = DefaultMode
	}
	min, exclusive := floor(in, mode, d)
	caps := in.Caps
	if caps.TLS {
		d.add("the recipient's mail server offers verified TLS (%s)", detailOr(caps.TLSDetail, "checked"))
	} else {
		d.add("the recipient's mail server offers no verified TLS (%s)", detailOr(caps.TLSDetail, "not checked"))
	}
	if pin := in.Pin; pin != "" && pin != PinAuto {
		return decidePinned(d, Method(pin), min, exclusive, caps)
	}
	for _, m := range candidates(min, exclusive) {
		if can(m, caps) && meets(m, min) {
			d.add("%s is the strongest method the recipient can receive that meets the minimum", m)
			noteKeySource(d, m, caps)
			return d.with(m)
		}
	}
	// Only tls_exclusive, with TLS the one candidate, gets here.
	d.add("the account is TLS-exclusive and never falls back: deferred until the recipient's server offers verified TLS")
	return d.with(MethodDefer)
}

// floor computes the message's minimum and whether only TLS may be
// chosen automatically, noting each cause.
func floor(in Input, mode Mode, d *Decision) (Minimum, bool) {
	min := MinNone
	raise := func(to Minimum, format string, args ...any) {
		d.add(format, args...)
		if to.rank() > min.rank() {
			min = to
		}
	}
	switch mode {
	case ModeOpportunistic:
		if in.ContainsPHI {
			raise(MinTLS, "the account's mode is opportunistic, and the message contains PHI (or could not be scanned): treated as forced TLS")
		} else {
			d.add("the account's mode is opportunistic and the message contains no PHI")
		}
	case ModeForcedTLS:
		raise(MinTLS, "the account's mode is forced TLS: verified TLS at least")
	case ModeTLSExclusive:
		raise(MinTLS, "the account's mode is TLS-exclusive: verified TLS only, no automatic fallback")
	case ModePortalAlways:
		raise(MinPortal, "the account's mode sends every message through the portal")
	}
	switch p := in.Policy; {
	case p.Action == ActionForcePortal:
		raise(MinPortal, "%s forces the portal", ruleName(p.RuleID))
	case p.MinEncryption.rank() > 0:
		raise(p.MinEncryption, "%s requires %s at least", ruleName(p.RuleID), p.MinEncryption)
	case p.Action == ActionRequireEncryption:
		raise(MinTLS, "%s requires encryption", ruleName(p.RuleID))
	}
	if in.SubjectTagged {
		raise(MinEndToEnd, "the subject carried the secure tag: end-to-end encryption or the portal")
	}
	return min, mode == ModeTLSExclusive && min.rank() <= MinTLS.rank()
}

// candidates are the methods Decide tries, strongest first.
func candidates(min Minimum, exclusive bool) []Method {
	if exclusive {
		return []Method{MethodTLS}
	}
	out := []Method{MethodSMIME, MethodPGP, MethodTLS, MethodPortal}
	if min == MinNone {
		out[3] = MethodOpportunisticTLS // never the portal for mail that needs no protection
	}
	return out
}

// can reports whether the recipient can receive m.
func can(m Method, caps Capabilities) bool {
	switch m {
	case MethodSMIME:
		return caps.SMIME
	case MethodPGP:
		return caps.PGP
	case MethodTLS:
		return caps.TLS
	case MethodOpportunisticTLS, MethodPortal:
		return true
	}
	return false
}

func decidePinned(d *Decision, m Method, min Minimum, exclusive bool, caps Capabilities) Decision {
	if !meets(m, min) {
		d.add("the message pins %s, which does not meet the minimum (%s)", m, minName(min))
		return d.with(MethodRefused)
	}
	if !can(m, caps) {
		if m == MethodTLS && exclusive {
			d.add("the message pins tls and the account is TLS-exclusive: deferred until the recipient's server offers verified TLS")
			return d.with(MethodDefer)
		}
		d.add("the message pins %s, which the recipient cannot receive (%s)", m, missing(m))
		return d.with(MethodRefused)
	}
	d.add("the message pins %s", m)
	noteKeySource(d, m, caps)
	return d.with(m)
}

// noteKeySource says when the chosen key was not uploaded but found in
// the recipient's domain's Web Key Directory.
func noteKeySource(d *Decision, m Method, caps Capabilities) {
	if m == MethodPGP && caps.PGPSource == KeyWKD {
		d.add("the recipient's PGP key was found in its domain's Web Key Directory")
	}
}

func missing(m Method) string {
	switch m {
	case MethodSMIME:
		return "no valid S/MIME certificate on file"
	case MethodPGP:
		return "no PGP key on file"
	}
	return "no verified TLS"
}

func minName(m Minimum) string {
	switch m {
	case MinTLS:
		return "verified TLS"
	case MinEndToEnd:
		return "end-to-end encryption or the portal"
	case MinPortal:
		return "the portal"
	}
	return "none"
}

// ruleName says which part of the account's DLP policy decided: a rule
// by its id, or the default that applies when no rule matches (PHI needs
// encryption, policy.md).
func ruleName(id string) string {
	if id == "" {
		return "the default policy"
	}
	return "policy rule " + id
}

func detailOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (d *Decision) add(format string, args ...any) {
	d.Reasons = append(d.Reasons, fmt.Sprintf(format, args...))
}

func (d *Decision) with(m Method) Decision {
	d.Method = m
	return *d
}

// String is "method: reason; reason".
func (d Decision) String() string {
	return string(d.Method) + ": " + strings.Join(d.Reasons, "; ")
}

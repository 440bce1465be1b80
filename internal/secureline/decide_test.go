package secureline

import (
	"fmt"
	"strings"
	"testing"
)

var (
	none     = Capabilities{TLSDetail: "mx.example does not offer STARTTLS"}
	tlsOnly  = Capabilities{TLS: true, TLSDetail: "STARTTLS verified for mx.example"}
	pgpOnly  = Capabilities{PGP: true}
	pgpTLS   = Capabilities{PGP: true, TLS: true}
	smimeAll = Capabilities{SMIME: true, PGP: true, TLS: true}
)

func TestDecideRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     Input
		want   Method
		reason string // a reason that must be among the answer's
	}{
		{"S/MIME is strongest when a certificate is on file", Input{Mode: ModeForcedTLS, Caps: smimeAll}, MethodSMIME, "strongest"},
		{"PGP beats TLS when a key is on file", Input{Mode: ModeForcedTLS, Caps: pgpTLS}, MethodPGP, "strongest"},
		{"forced TLS: verified TLS when the MX offers it", Input{Mode: ModeForcedTLS, Caps: tlsOnly}, MethodTLS, "forced TLS"},
		{"forced TLS: portal when the MX cannot do verified TLS", Input{Mode: ModeForcedTLS, Caps: none}, MethodPortal, "no verified TLS"},
		{"forced TLS: PGP rather than portal without TLS", Input{Mode: ModeForcedTLS, Caps: pgpOnly}, MethodPGP, ""},
		{"opportunistic without PHI: opportunistic TLS, never the portal", Input{Mode: ModeOpportunistic, Caps: none}, MethodOpportunisticTLS, "no PHI"},
		{"opportunistic without PHI still takes verified TLS", Input{Mode: ModeOpportunistic, Caps: tlsOnly}, MethodTLS, ""},
		{"opportunistic with PHI is treated as forced: portal", Input{Mode: ModeOpportunistic, ContainsPHI: true, Caps: none}, MethodPortal, "treated as forced TLS"},
		{"TLS-exclusive: TLS when verified", Input{Mode: ModeTLSExclusive, Caps: tlsOnly}, MethodTLS, ""},
		{"TLS-exclusive never falls back: defer", Input{Mode: ModeTLSExclusive, Caps: none}, MethodDefer, "never falls back"},
		{"TLS-exclusive ignores keys for the automatic choice", Input{Mode: ModeTLSExclusive, Caps: Capabilities{SMIME: true, PGP: true}}, MethodDefer, ""},
		{"TLS-exclusive honours a stronger pin", Input{Mode: ModeTLSExclusive, Pin: PinPGP, Caps: pgpOnly}, MethodPGP, "pins pgp"},
		{"TLS-exclusive with a tls pin defers rather than refuses", Input{Mode: ModeTLSExclusive, Pin: PinTLS, Caps: none}, MethodDefer, "TLS-exclusive"},
		{"TLS-exclusive: a policy minimum above TLS is honoured", Input{Mode: ModeTLSExclusive, Policy: PolicyVerdict{MinEncryption: MinEndToEnd, RuleID: "r1"}, Caps: tlsOnly}, MethodPortal, "policy rule r1 requires end_to_end"},
		{"portal always, whatever the recipient can do", Input{Mode: ModePortalAlways, Caps: smimeAll}, MethodPortal, "every message through the portal"},
		{"portal always refuses a pin to another method", Input{Mode: ModePortalAlways, Pin: PinSMIME, Caps: smimeAll}, MethodRefused, "does not meet the minimum"},
		{"pin pgp without a key is refused", Input{Mode: ModeForcedTLS, Pin: PinPGP, Caps: tlsOnly}, MethodRefused, "no PGP key on file"},
		{"pin smime without a certificate is refused", Input{Mode: ModeForcedTLS, Pin: PinSMIME, Caps: pgpTLS}, MethodRefused, "no valid S/MIME certificate"},
		{"pin tls without verified TLS is refused", Input{Mode: ModeForcedTLS, Pin: PinTLS, Caps: none}, MethodRefused, "no verified TLS"},
		{"pin portal always works", Input{Mode: ModeOpportunistic, Pin: PinPortal, Caps: none}, MethodPortal, "pins portal"},
		{"pin auto decides", Input{Mode: ModeForcedTLS, Pin: PinAuto, Caps: tlsOnly}, MethodTLS, ""},
		{"pin tls below a policy end-to-end minimum is refused", Input{Mode: ModeForcedTLS, Pin: PinTLS, Policy: PolicyVerdict{MinEncryption: MinEndToEnd}, Caps: tlsOnly}, MethodRefused, "does not meet"},
		{"policy end-to-end minimum excludes TLS", Input{Mode: ModeForcedTLS, Policy: PolicyVerdict{MinEncryption: MinEndToEnd}, Caps: tlsOnly}, MethodPortal, ""},
		{"policy end-to-end minimum keeps PGP", Input{Mode: ModeForcedTLS, Policy: PolicyVerdict{MinEncryption: MinEndToEnd}, Caps: pgpTLS}, MethodPGP, ""},
		{"policy portal minimum forces the portal", Input{Mode: ModeForcedTLS, Policy: PolicyVerdict{MinEncryption: MinPortal}, Caps: smimeAll}, MethodPortal, ""},
		{"policy action force_portal forces the portal", Input{Mode: ModeOpportunistic, Policy: PolicyVerdict{Action: ActionForcePortal, RuleID: "phi-lab"}, Caps: smimeAll}, MethodPortal, "policy rule phi-lab forces the portal"},
		{"policy require_encryption lifts opportunistic mail to verified TLS", Input{Mode: ModeOpportunistic, Policy: PolicyVerdict{Action: ActionRequireEncryption}, Caps: none}, MethodPortal, "requires encryption"},
		{"policy block blocks", Input{Mode: ModeForcedTLS, Policy: PolicyVerdict{Action: ActionBlock, RuleID: "no-ssn"}, Caps: smimeAll}, MethodBlocked, "blocks"},
		{"policy quarantine holds", Input{Mode: ModeForcedTLS, Policy: PolicyVerdict{Action: ActionQuarantine}, Caps: smimeAll}, MethodQuarantined, "review"},
		{"subject tag raises to end-to-end", Input{Mode: ModeOpportunistic, SubjectTagged: true, Caps: tlsOnly}, MethodPortal, "secure tag"},
		{"subject tag with a key: PGP", Input{Mode: ModeOpportunistic, SubjectTagged: true, Caps: pgpTLS}, MethodPGP, ""},
		{"an unknown mode counts as the default", Input{Mode: "bogus", Caps: none}, MethodPortal, "forced TLS"},
		{"a key from the Web Key Directory says so", Input{Mode: ModeForcedTLS, Caps: Capabilities{PGP: true, PGPSource: KeyWKD, TLS: true}}, MethodPGP, "Web Key Directory"},
		{"a pinned key from the Web Key Directory says so", Input{Mode: ModeForcedTLS, Pin: PinPGP, Caps: Capabilities{PGP: true, PGPSource: KeyWKD}}, MethodPGP, "Web Key Directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := Decide(tt.in)
			if d.Method != tt.want {
				t.Fatalf("Decide = %s, want %s", d, tt.want)
			}
			if tt.reason != "" && !strings.Contains(strings.Join(d.Reasons, "\n"), tt.reason) {
				t.Fatalf("reasons %q lack %q", d.Reasons, tt.reason)
			}
		})
	}
}

// TestDecideInvariantsOverEveryCase runs every mode × capability set ×
// pin × policy minimum and action × PHI × subject tag and holds each
// answer to the rules that must never break.
func TestDecideInvariantsOverEveryCase(t *testing.T) {
	t.Parallel()
	var capSets []Capabilities
	for i := range 8 {
		capSets = append(capSets, Capabilities{SMIME: i&1 != 0, PGP: i&2 != 0, TLS: i&4 != 0})
	}
	pins := []string{"", PinAuto, PinTLS, PinPGP, PinSMIME, PinPortal}
	mins := []Minimum{MinNone, MinTLS, MinEndToEnd, MinPortal}
	actions := []string{"", ActionAllow, ActionRequireEncryption, ActionForcePortal, ActionQuarantine, ActionBlock}
	n := 0
	for _, mode := range Modes {
		for _, caps := range capSets {
			for _, pin := range pins {
				for _, min := range mins {
					for _, action := range actions {
						for _, phi := range []bool{false, true} {
							for _, tagged := range []bool{false, true} {
								in := Input{Mode: mode, Pin: pin, ContainsPHI: phi, Policy: PolicyVerdict{Action: action, MinEncryption: min},
									SubjectTagged: tagged, Caps: caps}
								checkInvariants(t, in, Decide(in))
								n++
							}
						}
					}
				}
			}
		}
	}
	if n != 4*8*6*4*6*2*2 {
		t.Fatalf("ran %d cases", n)
	}
}

func checkInvariants(t *testing.T, in Input, d Decision) {
	t.Helper()
	fail := func(rule string) {
		t.Helper()
		t.Errorf("%s: %+v -> %s", rule, in, d)
	}
	if len(d.Reasons) == 0 {
		fail("every answer says why")
	}
	switch in.Policy.Action {
	case ActionBlock:
		if d.Method != MethodBlocked {
			fail("a blocking policy blocks")
		}
		return
	case ActionQuarantine:
		if d.Method != MethodQuarantined {
			fail("a quarantining policy holds")
		}
		return
	}
	pinned := in.Pin != "" && in.Pin != PinAuto
	if d.Method == MethodRefused && !pinned {
		fail("only a pin is refused")
	}
	if d.Method == MethodDefer && in.Mode != ModeTLSExclusive {
		fail("only TLS-exclusive defers")
	}
	if pinned && d.Method.Sends() && string(d.Method) != in.Pin {
		fail("a pin is honoured exactly or not at all")
	}
	if !d.Method.Sends() {
		return
	}
	if !can(d.Method, in.Caps) {
		fail("the method is one the recipient can receive")
	}
	min := in.Policy.MinEncryption
	if in.Policy.Action == ActionForcePortal || in.Mode == ModePortalAlways {
		min = MinPortal
	}
	if in.SubjectTagged && min.rank() < MinEndToEnd.rank() {
		min = MinEndToEnd
	}
	if !meets(d.Method, min) {
		fail("the method meets the policy's and the tag's minimum")
	}
	if d.Method == MethodOpportunisticTLS && (in.Mode != ModeOpportunistic || in.ContainsPHI || min != MinNone || in.Policy.Action == ActionRequireEncryption) {
		fail("opportunistic TLS only for mail without PHI or a floor under the opportunistic mode")
	}
	if in.Mode == ModePortalAlways && d.Method != MethodPortal {
		fail("portal always sends through the portal")
	}
	if in.Mode == ModeTLSExclusive && !pinned && min.rank() <= MinTLS.rank() && d.Method != MethodTLS {
		fail("TLS-exclusive chooses TLS by itself or nothing")
	}
	if !pinned && d.Method == MethodPortal && in.Caps.SMIME && min != MinPortal {
		fail("the portal is not chosen over a certificate on file")
	}
	for _, r := range d.Reasons {
		if strings.ContainsAny(r, "\r\n") {
			fail(fmt.Sprintf("reason %q is one line", r))
		}
	}
}

func TestFallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		current   Method
		tlsFailed bool
		mode      Mode
		want      Method
	}{
		{"a TLS recipient whose MX fails TLS goes to the portal", MethodTLS, true, ModeForcedTLS, MethodPortal},
		{"under opportunistic mode too, never clear text", MethodTLS, true, ModeOpportunistic, MethodPortal},
		{"TLS-exclusive defers instead", MethodTLS, true, ModeTLSExclusive, MethodDefer},
		{"TLS that works changes nothing", MethodTLS, false, ModeForcedTLS, MethodTLS},
		{"S/MIME does not depend on the transport", MethodSMIME, true, ModeForcedTLS, MethodSMIME},
		{"PGP does not depend on the transport", MethodPGP, true, ModeTLSExclusive, MethodPGP},
		{"the portal stays the portal", MethodPortal, true, ModeForcedTLS, MethodPortal},
		{"opportunistic TLS accepts what the server offers", MethodOpportunisticTLS, true, ModeOpportunistic, MethodOpportunisticTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, reason := Fallback(tt.current, tt.tlsFailed, tt.mode)
			if got != tt.want {
				t.Fatalf("Fallback = %s (%s), want %s", got, reason, tt.want)
			}
			if (got != tt.current) != (reason != "") {
				t.Fatalf("a change and only a change has a reason: %q", reason)
			}
		})
	}
}

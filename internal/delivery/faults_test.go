package delivery_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// The fault table: what the engine records when the remote end, DNS or
// the network misbehave at each stage of a delivery, and that a retry
// never delivers a message twice unless the remote accepted it without
// our hearing so.

// faultWorld is a world whose destinations' MX hosts (dN.mx.example) are
// one scripted server that misbehaves as each case says.
type faultWorld struct {
	*world
	mx        *smtptest.Scripted
	trusted   *tls.Certificate // valid for *.mx.example, trusted by the engine
	untrusted *tls.Certificate // the same names, signed by nobody the engine trusts
	next      int
}

func newFaultWorld(t *testing.T, s *store.Store, policy string) *faultWorld {
	t.Helper()
	trusted, trustedPEM, err := smtptest.Certificate("*.mx.example")
	if err != nil {
		t.Fatal(err)
	}
	untrusted, _, err := smtptest.Certificate("*.mx.example")
	if err != nil {
		t.Fatal(err)
	}
	mx, err := smtptest.StartScripted(smtptest.Script{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mx.Close)
	_, port, _ := net.SplitHostPort(mx.Addr)
	f := &faultWorld{mx: mx, trusted: &trusted, untrusted: &untrusted}
	f.world = newWorld(t, s, policy, func(o *delivery.Options) {
		o.Port, _ = strconv.Atoi(port)
		o.RootCAs.AppendCertsFromPEM(trustedPEM)
		o.Timeout = time.Second // bounds the DNS timeout case
	})
	return f
}

// destination publishes a new domain whose MX is the scripted server.
func (f *faultWorld) destination() string {
	f.next++
	n := strconv.Itoa(f.next)
	f.must(f.dns.Add("d"+n+".example. 60 IN MX 10 d"+n+".mx.example.", "d"+n+".mx.example. 60 IN A 127.0.0.1"))
	return "d" + n + ".example"
}

// expect is a recipient's recorded outcome after one attempt.
type expect struct {
	state string
	code  int    // smtp_code (0: no SMTP reply, the reason is recorded)
	reply string // in smtp_reply
	// suppressed: the address went on the suppression list (a hard bounce).
	suppressed bool
}

var (
	delivered = expect{state: messages.StateDelivered, code: 250, reply: "250 2.0.0"}
	lost      = expect{state: messages.StateDeferred, reply: "connection lost"}
)

func deferred(code int, reply string) expect {
	return expect{state: messages.StateDeferred, code: code, reply: reply}
}
func bounced(code int, reply string) expect {
	return expect{state: messages.StateBounced, code: code, reply: reply}
}

// recipients returns a message's recipients by address.
func (f *faultWorld) recipients(id string) map[string]messages.Recipient {
	f.t.Helper()
	out := map[string]messages.Recipient{}
	for _, r := range f.status(id).Recipients {
		out[r.Address] = r
	}
	return out
}

// check asserts a recipient's outcome after its first attempt: state,
// evidence, backoff for a deferral, suppression for a hard bounce only.
func (f *faultWorld) check(t *testing.T, r messages.Recipient, want expect) {
	t.Helper()
	if r.State != want.state || r.SMTPCode != want.code || !strings.Contains(r.SMTPReply, want.reply) || r.Attempts != 1 {
		t.Errorf("%s: %s, code %d, reply %q, %d attempts; want %s, code %d, reply with %q, 1 attempt",
			r.Address, r.State, r.SMTPCode, r.SMTPReply, r.Attempts, want.state, want.code, want.reply)
	}
	if want.state == messages.StateDeferred {
		// The first retry is a minute away, ±20% (backoff).
		if r.NextAttempt == nil || r.NextAttempt.Before(f.now().Add(47*time.Second)) || r.NextAttempt.After(f.now().Add(73*time.Second)) {
			t.Errorf("%s: deferred with next attempt %v, want about a minute after %v", r.Address, r.NextAttempt, f.now())
		}
	}
	if got := f.suppressed(r.Address); got != want.suppressed {
		t.Errorf("%s: suppressed %v, want %v", r.Address, got, want.suppressed)
	}
}

func (f *faultWorld) suppressed(addr string) bool {
	f.t.Helper()
	var n int
	if err := f.db.Reader().QueryRow(context.Background(), "SELECT count(*) FROM suppressions WHERE account_id = $1 AND address = $2",
		f.actor.Principal.AccountID, strings.ToLower(addr)).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n > 0
}

// copies counts the copies of a message to addr the server kept.
func (f *faultWorld) copies(addr string) int {
	n := 0
	for _, m := range f.mx.Messages() {
		if slices.Contains(m.Rcpts, addr) {
			n++
		}
	}
	return n
}

// retryAll heals the server, lets the backoff pass and delivers the
// domains again; then every deferred recipient is delivered on its second
// attempt, every other outcome stands, and the server holds exactly one
// copy for each delivered recipient (wantCopies overrides).
func (f *faultWorld) retryAll(t *testing.T, sent map[string]messages.Accepted, first map[string]string, wantCopies map[string]int) {
	t.Helper()
	f.mx.Set(smtptest.Script{Cert: f.trusted})
	f.advance(3 * time.Minute)
	for domain := range sent {
		f.deliver(domain)
	}
	for domain, acc := range sent {
		for addr, r := range f.recipients(acc.ID) {
			want, attempts := first[addr], 1
			if want == messages.StateDeferred {
				want, attempts = messages.StateDelivered, 2
			}
			copies := 0
			if want == messages.StateDelivered {
				copies = 1
			}
			if n, ok := wantCopies[addr]; ok {
				copies = n
			}
			if r.State != want || r.Attempts != attempts || f.copies(addr) != copies {
				t.Errorf("%s (%s) after the retry: %s, %d attempts, %d copies at the server; want %s, %d, %d",
					addr, domain, r.State, r.Attempts, f.copies(addr), want, attempts, copies)
			}
		}
	}
}

// refuse answers RCPT for local parts from a table (others accepted).
func refuse(replies map[string]string) func(string) string {
	return func(addr string) string {
		local, _, _ := strings.Cut(addr, "@")
		return replies[local]
	}
}

func TestRemoteRepliesAtEachStage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script smtptest.Script
		want   map[string]expect // by local part; one recipient "pat" unless more
		kept   int               // copies the server kept on the first attempt
		log    string            // a command the server must have seen
	}{
		{name: "a well-behaved server delivers", want: map[string]expect{"pat": delivered}, kept: 1},
		{name: "a 421 greeting defers", script: smtptest.Script{Greeting: "421 4.3.2 busy, come back later"},
			want: map[string]expect{"pat": deferred(0, "greeting: 421 4.3.2 busy")}},
		// RFC 5321 §3.1: a 554 greeting refuses this host, not the
		// mailbox; another MX, or a later try, may take it (Postfix's
		// smtp_skip_5xx_greeting default).
		{name: "a 554 greeting defers", script: smtptest.Script{Greeting: "554 5.3.2 no service"},
			want: map[string]expect{"pat": deferred(0, "greeting: 554 5.3.2")}},
		// RFC 5321 §3.2: a server that does not know EHLO gets HELO (and
		// so no extensions: no STARTTLS, clear text under opportunistic).
		{name: "EHLO not understood falls back to HELO", script: smtptest.Script{Ehlo: "502 5.5.1 command not implemented"},
			want: map[string]expect{"pat": delivered}, kept: 1, log: "HELO"},
		{name: "EHLO refused defers", script: smtptest.Script{Ehlo: "554 5.7.1 go away"},
			want: map[string]expect{"pat": deferred(0, "EHLO: 554 5.7.1 go away")}},
		{name: "MAIL FROM 451 defers every recipient", script: smtptest.Script{Mail: "451 4.3.0 try again later"},
			want: map[string]expect{"pat": deferred(451, "451 4.3.0"), "sam": deferred(451, "451 4.3.0")}, log: "RSET"},
		// A refused sender says nothing about the mailboxes: no
		// suppression.
		{name: "MAIL FROM 550 bounces every recipient without suppressing them", script: smtptest.Script{Mail: "550 5.7.1 sender rejected"},
			want: map[string]expect{"pat": bounced(550, "550 5.7.1"), "sam": bounced(550, "550 5.7.1")}, log: "RSET"},
		{name: "RCPT refusals apply to their recipient only, 5.1.1 suppresses",
			script: smtptest.Script{Rcpt: refuse(map[string]string{"busy": "452 4.2.2 mailbox full", "gone": "550 5.1.1 no such user"})},
			want: map[string]expect{"pat": delivered, "busy": deferred(452, "452 4.2.2"),
				"gone": {state: messages.StateBounced, code: 550, reply: "550 5.1.1", suppressed: true}}, kept: 1},
		{name: "RCPT 550 for policy (5.7.1) bounces without suppressing",
			script: smtptest.Script{Rcpt: refuse(map[string]string{"pat": "550 5.7.1 relaying denied"})},
			want:   map[string]expect{"pat": bounced(550, "550 5.7.1")}},
		{name: "every RCPT refused: DATA is refused and nothing is sent",
			script: smtptest.Script{Rcpt: refuse(map[string]string{"pat": "450 4.2.1 greylisted", "sam": "550 5.1.1 unknown"})},
			want: map[string]expect{"pat": deferred(450, "450 4.2.1"),
				"sam": {state: messages.StateBounced, code: 550, reply: "550 5.1.1", suppressed: true}}},
		{name: "a 354 with no recipient accepted gets an empty message",
			script: smtptest.Script{Rcpt: refuse(map[string]string{"pat": "450 4.2.1 greylisted"}), Data: "354 go ahead"},
			want:   map[string]expect{"pat": deferred(450, "450 4.2.1")}},
		{name: "DATA 451 defers the accepted recipients", script: smtptest.Script{Data: "451 4.3.0 local error"},
			want: map[string]expect{"pat": deferred(451, "451 4.3.0"), "sam": deferred(451, "451 4.3.0")}, log: "RSET"},
		{name: "DATA 554 bounces the accepted recipients without suppressing", script: smtptest.Script{Data: "554 5.3.0 no DATA today"},
			want: map[string]expect{"pat": bounced(554, "554 5.3.0")}},
		{name: "end-of-data 451 defers", script: smtptest.Script{EndOfData: "451 4.3.0 queue full"},
			want: map[string]expect{"pat": deferred(451, "451 4.3.0"), "sam": deferred(451, "451 4.3.0")}},
		{name: "end-of-data 552 bounces", script: smtptest.Script{EndOfData: "552 5.3.4 message too big"},
			want: map[string]expect{"pat": bounced(552, "552 5.3.4")}},
		{name: "end-of-data 554 (content refused) bounces without suppressing", script: smtptest.Script{EndOfData: "554 5.7.1 spam"},
			want: map[string]expect{"pat": bounced(554, "554 5.7.1")}},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFaultWorld(t, s, delivery.TLSOpportunistic)
		for _, pipelining := range []bool{true, false} {
			t.Run("pipelining="+strconv.FormatBool(pipelining), func(t *testing.T) {
				sent := map[string]messages.Accepted{}
				first := map[string]string{}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						script := tt.script
						script.NoPipelining, script.Cert = !pipelining, f.trusted
						f.mx.Set(script)
						domain := f.destination()
						var to []string
						for local := range tt.want {
							to = append(to, local+"@"+domain)
						}
						slices.Sort(to)
						logged := len(f.mx.Log())
						acc := f.send(to...)
						f.deliver(domain)
						got := f.recipients(acc.ID)
						copies := 0
						for local, want := range tt.want {
							addr := local + "@" + domain
							f.check(t, got[addr], want)
							first[addr] = got[addr].State
							copies += f.copies(addr)
						}
						if copies != tt.kept {
							t.Errorf("the server kept %d copies, want %d", copies, tt.kept)
						}
						if tt.log != "" && !slices.Contains(f.mx.Log()[logged:], tt.log) {
							t.Errorf("the server never saw %s: %v", tt.log, f.mx.Log()[logged:])
						}
						sent[domain] = acc
					})
				}
				t.Run("deferred recipients are delivered once on the retry", func(t *testing.T) {
					f.retryAll(t, sent, first, nil)
				})
			})
		}
	})
}

func TestDNSFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup makes domain (which has an MX to the server) fail.
		setup func(f *faultWorld, domain string)
		want  expect
	}{
		{name: "SERVFAIL for the MX lookup defers", want: deferred(0, "mail hosts:"),
			setup: func(f *faultWorld, domain string) { f.dns.Fail(domain, dns.RcodeServerFailure) }},
		{name: "no answer to the MX lookup (a timeout) defers", want: deferred(0, "mail hosts:"),
			setup: func(f *faultWorld, domain string) { f.dns.Fail(domain, dnstest.NoAnswer) }},
		{name: "SERVFAIL for the MX host's address defers", want: deferred(0, "no mail host took the connection"),
			setup: func(f *faultWorld, domain string) {
				f.dns.Fail(strings.Replace(domain, ".", ".mx.", 1), dns.RcodeServerFailure)
			}},
		// RFC 5321 §5.1 and RFC 7505: a domain that does not exist, or
		// publishes a null MX, takes no mail, now or later.
		{name: "NXDOMAIN bounces", want: bounced(0, "no such domain"),
			setup: func(f *faultWorld, domain string) { f.dns.Remove(domain) }},
		{name: "a null MX bounces", want: bounced(0, "null MX"),
			setup: func(f *faultWorld, domain string) {
				f.dns.Remove(domain)
				f.must(f.dns.Add(domain + ". 60 IN MX 0 ."))
			}},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFaultWorld(t, s, delivery.TLSOpportunistic)
		f.mx.Set(smtptest.Script{Cert: f.trusted})
		sent := map[string]messages.Accepted{}
		first := map[string]string{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				domain := f.destination()
				tt.setup(f, domain)
				addr := "pat@" + domain
				acc := f.send(addr)
				f.deliver(domain)
				r := f.recipients(acc.ID)[addr]
				f.check(t, r, tt.want)
				if n := f.copies(addr); n != 0 {
					t.Errorf("the server kept %d copies", n)
				}
				first[addr], sent[domain] = r.State, acc
			})
		}
		t.Run("deferred recipients are delivered once DNS answers", func(t *testing.T) {
			for domain := range sent {
				f.dns.Fail(domain, dns.RcodeSuccess)
				f.dns.Fail(strings.Replace(domain, ".", ".mx.", 1), dns.RcodeSuccess)
			}
			f.retryAll(t, sent, first, nil)
		})
	})
}

// A dropped connection is a deferral, as a 451 would be (RFC 5321 §3.8).
// RFC 5321 §4.1.1.4 and §6.1: the message is the server's only once it
// answered 250 to the final dot,
// so a drop before that reply leaves it ours, and the retry sends one
// copy. A server that kept the message and then lost the connection
// before its 250 reached us is the one case that gives two copies: from
// this side it cannot be told apart from a drop before acceptance.
func TestConnectionDrops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  smtptest.Script
		unacked int // messages read whole but never answered
		copies  int // copies at the server after the retry
	}{
		{name: "a drop mid-DATA defers and the retry sends one copy", script: smtptest.Script{DropAfterDataBytes: 300}, copies: 1},
		{name: "a drop after the final dot, before the reply, defers and the retry sends one copy",
			script: smtptest.Script{DropAfterDot: true}, unacked: 1, copies: 1},
		{name: "a drop after the server kept the message, before its 250 arrived, gives the one duplicate",
			script: smtptest.Script{KeepThenDrop: true}, copies: 2},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFaultWorld(t, s, delivery.TLSRequired)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				script := tt.script
				script.Cert = f.trusted
				f.mx.Set(script)
				domain := f.destination()
				addr := "pat@" + domain
				unacked := f.mx.Unacknowledged()
				acc := f.send(addr)
				f.deliver(domain)
				r := f.recipients(acc.ID)[addr]
				f.check(t, r, lost)
				if !slices.Contains(f.mx.Log(), "hangup") {
					t.Fatal("the server never hung up")
				}
				if n := f.mx.Unacknowledged() - unacked; n != tt.unacked {
					t.Errorf("%d messages read and not answered, want %d", n, tt.unacked)
				}
				f.retryAll(t, map[string]messages.Accepted{domain: acc}, map[string]string{addr: r.State}, map[string]int{addr: tt.copies})
			})
		}
	})
}

func TestTLSFaults(t *testing.T) {
	t.Parallel()
	type script = smtptest.Script
	inClear := expect{state: messages.StateDelivered, code: 250, reply: "250 2.0.0"}
	tests := []struct {
		name   string
		script func(f *faultWorld) script
		// required and opportunistic are the outcomes under each policy.
		required, opportunistic expect
		// encrypted: a delivered copy went over TLS.
		encrypted bool
	}{
		{name: "verified STARTTLS delivers under both policies", script: func(f *faultWorld) script { return script{Cert: f.trusted} },
			required: delivered, opportunistic: delivered, encrypted: true},
		// RFC 7435: opportunistic encrypts without authentication rather
		// than send in clear text.
		{name: "an untrusted certificate defers under required, is used unverified under opportunistic",
			script:   func(f *faultWorld) script { return script{Cert: f.untrusted} },
			required: deferred(0, "TLS required: TLS handshake"), opportunistic: delivered, encrypted: true},
		// RFC 3207 §4: after 454 the client decides. Once a server offered
		// STARTTLS, Sealpost never falls back to clear text: the
		// recipient is deferred under either policy.
		{name: "STARTTLS refused with 454 defers under both policies",
			script:   func(f *faultWorld) script { return script{Cert: f.trusted, StartTLS: "454 4.7.0 TLS not available"} },
			required: deferred(0, "STARTTLS: 454 4.7.0"), opportunistic: deferred(0, "STARTTLS: 454 4.7.0")},
		{name: "a handshake the server breaks off defers under both policies",
			script:   func(f *faultWorld) script { return script{Cert: f.trusted, HangUpAtHandshake: true} },
			required: deferred(0, "TLS handshake"), opportunistic: deferred(0, "TLS handshake")},
		{name: "no STARTTLS offered defers under required, goes in clear text under opportunistic",
			script:   func(*faultWorld) script { return script{} },
			required: deferred(0, "does not offer STARTTLS"), opportunistic: inClear},
		{name: "a HELO-only server defers under required, goes in clear text under opportunistic",
			script:   func(f *faultWorld) script { return script{Cert: f.trusted, Ehlo: "500 5.5.1 what?"} },
			required: deferred(0, "does not offer STARTTLS"), opportunistic: inClear},
	}
	for _, policy := range []string{delivery.TLSRequired, delivery.TLSOpportunistic} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				f := newFaultWorld(t, s, policy)
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						want := tt.required
						if policy == delivery.TLSOpportunistic {
							want = tt.opportunistic
						}
						f.mx.Set(tt.script(f))
						domain := f.destination()
						addr := "pat@" + domain
						acc := f.send(addr)
						f.deliver(domain)
						r := f.recipients(acc.ID)[addr]
						f.check(t, r, want)
						kept := f.mx.Messages()
						n := f.copies(addr)
						switch {
						case want.state != messages.StateDelivered:
							if n != 0 {
								t.Errorf("the server kept %d copies", n)
							}
						case n != 1 || kept[len(kept)-1].TLS != tt.encrypted || (r.TLSVersion != "") != tt.encrypted:
							t.Errorf("%d copies, over TLS %v, recorded TLS version %q; want 1 copy, TLS %v",
								n, kept[len(kept)-1].TLS, r.TLSVersion, tt.encrypted)
						}
					})
				}
			})
		})
	}
}

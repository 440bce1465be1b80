package delivery_test

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

// secureWorld is the delivery world with SecureLine at delivery: the
// real key store (a test CA as the S/MIME trust anchor), the real portal
// (its notices land in an outbox), the account's mode from the real
// settings table, and two more destinations: wrongname.example, whose MX
// is the sink under a certificate for other names, and plain.example, a
// sink without STARTTLS.
type secureWorld struct {
	*world
	keys   *keys.Service
	portal *portal.Service
	modes  *secureline.Service
	ca     *keystest.CA
	plain  *smtptest.Sink
	reg    *prometheus.Registry
	out    *noticeBox
}

// noticeBox stands where the messages pipeline stands for the portal's
// notices (the portal package's own tests cover sending them).
type noticeBox struct {
	mu      sync.Mutex
	notices []portal.Notice
}

func (b *noticeBox) Notify(_ context.Context, n portal.Notice) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notices = append(b.notices, n)
	return store.NewID(), nil
}

func newSecureWorld(t *testing.T, s *store.Store, policy string) *secureWorld {
	t.Helper()
	ctx := context.Background()
	x := &secureWorld{world: newWorld(t, s, policy), ca: keystest.NewCA(t, "Test Mail CA"), reg: prometheus.NewRegistry(), out: &noticeBox{}}
	var err error
	if x.plain, err = smtptest.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.plain.Close)
	_, plainPort, _ := net.SplitHostPort(x.plain.Addr)
	x.must(x.dns.Add("wrongname.example. 60 IN MX 10 mx.wrongname.example.", "mx.wrongname.example. 60 IN A 127.0.0.1",
		"mx.plain.example. 60 IN A 127.0.0.1",
		// mixed.example: a preferred MX whose certificate is for another
		// name, then one that verifies.
		"mixed.example. 60 IN MX 5 mx.wrongname.example.", "mixed.example. 60 IN MX 10 mx2.patient.example.",
		"mx2.patient.example. 60 IN A 127.0.0.1"))
	log := audit.New(s, audit.Options{})
	x.keys = keys.New(s, x.vault, log, keys.Options{SMIME: smime.Policy{Roots: x.ca.Pool()}})
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "portal.key"), true)
	x.must(err)
	q, err := queue.New(s, queue.Options{})
	x.must(err)
	x.portal, err = portal.New(ctx, s, x.vault, mk, q, log, x.out, portal.Options{BaseURL: "https://portal.test", Now: x.now})
	x.must(err)
	x.must(queue.AddWorker(q, &portal.NotifyWorker{Service: x.portal})) // the queue is not started
	x.modes = secureline.New(s, secureline.Options{})
	x.engine, err = delivery.New(s, x.vault, x.domains, x.resolver, delivery.Options{HeloName: "mta.clinic.example", TLSPolicy: policy,
		RootCAs: x.roots, Port: x.port, Timeout: 5 * time.Second, Registerer: x.reg, Now: x.now,
		Routes: map[string]string{"plain.example": "mx.plain.example:" + plainPort},
		Keys:   x.keys, Portal: x.portal, Modes: x.modes})
	x.must(err)
	t.Cleanup(x.engine.Close)
	return x
}

// decide sets a recipient's method as the acceptance side records it.
func (x *secureWorld) decide(messageID, address, method string) {
	x.t.Helper()
	n, err := x.db.Writer().Exec(context.Background(), `UPDATE message_recipients SET enc_method = $1, enc_reasons = $2
		WHERE message_id = $3 AND address = $4`, method, `["decided at acceptance"]`, messageID, address)
	x.must(err)
	if n != 1 {
		x.t.Fatalf("no recipient %s", address)
	}
}

func (x *secureWorld) setMode(mode secureline.Mode) {
	x.t.Helper()
	x.must(x.modes.SetSettings(context.Background(), x.actor, secureline.Settings{Mode: mode, SubjectTag: secureline.DefaultSubjectTag}))
}

func (x *secureWorld) recipient(messageID, address string) messages.Recipient {
	x.t.Helper()
	for _, r := range x.status(messageID).Recipients {
		if r.Address == address {
			return r
		}
	}
	x.t.Fatalf("no recipient %s", address)
	return messages.Recipient{}
}

// portalCopies counts the portal messages deposited for a recipient.
func (x *secureWorld) portalCopies(messageID string, rcpt int) int {
	x.t.Helper()
	var n int
	x.must(x.db.Reader().QueryRow(context.Background(), `SELECT COUNT(*) FROM portal_messages WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3`,
		x.actor.Principal.AccountID, messageID, rcpt).Scan(&n))
	return n
}

func (x *secureWorld) counter(name string, labels map[string]string) float64 {
	x.t.Helper()
	return (&stsWorld{world: x.world, reg: x.reg}).counter(name, labels)
}

// to returns the message the sink received for address.
func to(t *testing.T, got []smtptest.Received, address string) smtptest.Received {
	t.Helper()
	for _, m := range got {
		for _, r := range m.Rcpts {
			if r == address {
				if len(m.Rcpts) != 1 {
					t.Fatalf("the message for %s went to %v too", address, m.Rcpts)
				}
				return m
			}
		}
	}
	t.Fatalf("nothing received for %s among %d messages", address, len(got))
	return smtptest.Received{}
}

func (x *secureWorld) verifyDKIM(data []byte) {
	x.t.Helper()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return x.resolver.TXT(context.Background(), name) }})
	if err != nil || len(verifs) != 2 {
		x.t.Fatalf("DKIM: %v, %d signatures", err, len(verifs))
	}
	for _, v := range verifs {
		if v.Err != nil || v.Domain != "clinic.example" {
			x.t.Errorf("DKIM signature over the encrypted message: %+v: %v", v, v.Err)
		}
	}
}

// part returns the body of the MIME part of msg whose Content-Type is
// ctype.
func part(t *testing.T, msg []byte, ctype string) []byte {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no %s part: %v", ctype, err)
		}
		if mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); mt == ctype {
			b, _ := io.ReadAll(p)
			return b
		}
	}
}

func TestPGPRecipientGetsPGPMIMEThatDecrypts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSecureWorld(t, s, delivery.TLSRequired)
		entity := keystest.PGPEntity(t, "pat@patient.example", keystest.PGPSpec{})
		_, err := x.keys.UploadPGP(context.Background(), x.actor, keys.Upload{Address: "pat@patient.example",
			PublicKey: string(keystest.ArmorPublic(t, entity))})
		x.must(err)
		acc := x.send("pat@patient.example", "sam@patient.example")
		x.decide(acc.ID, "pat@patient.example", "pgp")
		x.deliver("patient.example")

		got := x.sink.Messages()
		if len(got) != 2 {
			t.Fatalf("sink received %d messages: want the encrypted one for pat and the plain one for sam", len(got))
		}
		enc := to(t, got, "pat@patient.example")
		if !enc.TLS || !bytes.Contains(enc.Data, []byte(`Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"`)) ||
			bytes.Contains(enc.Data, []byte("Tomorrow at")) || bytes.Contains(enc.Data, []byte("Your appointment")) {
			t.Fatalf("pat's copy is not PGP/MIME only:\n%s", enc.Data)
		}
		if plain := to(t, got, "sam@patient.example"); !bytes.Contains(plain.Data, []byte("Subject: Your appointment")) {
			t.Errorf("sam's copy (no decision) changed:\n%s", plain.Data)
		}
		x.verifyDKIM(enc.Data)

		armored := part(t, enc.Data, "application/octet-stream")
		block, err := armor.Decode(bytes.NewReader(armored))
		x.must(err)
		md, err := openpgp.ReadMessage(block.Body, openpgp.EntityList{entity}, nil, nil)
		x.must(err)
		inner, err := io.ReadAll(md.UnverifiedBody)
		x.must(err)
		if !bytes.Contains(inner, []byte("Your appointment")) || !bytes.Contains(inner, []byte("Tomorrow at 9:00")) {
			t.Errorf("decrypted entity lacks the subject or the text:\n%s", inner)
		}
		gpgDecrypt(t, keystest.ArmorPrivate(t, entity), armored, "Tomorrow at 9:00")

		if r := x.recipient(acc.ID, "pat@patient.example"); r.State != messages.StateDelivered || r.RemoteHost != "mx.patient.example" {
			t.Errorf("pat: %+v", r)
		}
		if n := x.counter("sealpost_delivery_secure_delivered_total", map[string]string{"method": "pgp"}); n != 1 {
			t.Errorf("pgp deliveries counted %v, want 1", n)
		}
	})
}

// gpgDecrypt has GnuPG decrypt armored with the private key and checks
// that the plaintext holds want; it skips without gpg.
func gpgDecrypt(t *testing.T, private, armored []byte, want string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Log("gpg is not installed (apt-get install gnupg): GnuPG interoperability not checked")
		return
	}
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket must fit in sun_path
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GNUPGHOME="+home, "LC_ALL=C")
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = env
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Env, cmd.Stdin = env, bytes.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.Bytes()
	}
	run(private, "--import")
	if out := run(armored, "--decrypt"); !bytes.Contains(out, []byte(want)) {
		t.Errorf("gpg --decrypt output lacks %q:\n%s", want, out)
	}
}

func TestSMIMERecipientGetsSignedEnvelopeThatOpenSSLOpens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSecureWorld(t, s, delivery.TLSRequired)
		ctx := context.Background()
		rcptCert, rcptKey := x.ca.Issue(t, keystest.Leaf{Emails: []string{"pat@patient.example"}, Key: keystest.RSAKey(0)})
		_, err := x.keys.UploadSMIME(ctx, x.actor, keys.Upload{Address: "pat@patient.example", Certificate: string(keystest.CertPEM(rcptCert))})
		x.must(err)
		senderCert, senderKey := x.ca.Issue(t, keystest.Leaf{Emails: []string{"reminders@clinic.example"}, Key: keystest.RSAKey(1)})
		_, err = x.keys.UploadSender(ctx, x.actor, keys.Upload{Address: "reminders@clinic.example",
			Certificate: string(keystest.CertPEM(senderCert)), PrivateKey: string(keystest.KeyPEM(t, senderKey))})
		x.must(err)
		acc := x.send("pat@patient.example")
		x.decide(acc.ID, "pat@patient.example", "smime")
		x.deliver("patient.example")

		enc := to(t, x.sink.Messages(), "pat@patient.example")
		if !bytes.Contains(enc.Data, []byte("Content-Type: application/pkcs7-mime; smime-type=enveloped-data")) ||
			bytes.Contains(enc.Data, []byte("Your appointment")) {
			t.Fatalf("pat's copy is not S/MIME enveloped data only:\n%.600s", enc.Data)
		}
		x.verifyDKIM(enc.Data)
		if n := x.counter("sealpost_delivery_secure_delivered_total", map[string]string{"method": "smime"}); n != 1 {
			t.Errorf("smime deliveries counted %v, want 1", n)
		}

		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("openssl is not installed (apt-get install openssl): OpenSSL interoperability not checked")
		}
		dir := t.TempDir()
		for name, data := range map[string][]byte{"msg.eml": enc.Data, "rcpt.pem": keystest.CertPEM(rcptCert),
			"rcpt.key": keystest.KeyPEM(t, rcptKey), "ca.pem": keystest.CertPEM(x.ca.Cert)} {
			x.must(os.WriteFile(filepath.Join(dir, name), data, 0o600))
		}
		openssl := func(args ...string) string {
			t.Helper()
			cmd := exec.Command("openssl", args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		openssl("cms", "-decrypt", "-recip", "rcpt.pem", "-inkey", "rcpt.key", "-in", "msg.eml", "-out", "signed.eml")
		if out := openssl("cms", "-verify", "-CAfile", "ca.pem", "-in", "signed.eml", "-out", "content.eml"); !strings.Contains(out, "Verification successful") {
			t.Errorf("openssl cms -verify of the sender's signature: %s", out)
		}
		content, err := os.ReadFile(filepath.Join(dir, "content.eml"))
		x.must(err)
		if !bytes.Contains(content, []byte("Your appointment")) {
			t.Errorf("the decrypted, verified entity lacks the real subject:\n%.600s", content)
		}
	})
}

func TestEncryptedRecipientWithoutAValidKeyGoesToThePortal(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"pgp", "smime"} {
		t.Run(method, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				x := newSecureWorld(t, s, delivery.TLSRequired)
				// The key was deleted (or expired) after the decision: none is on file now.
				acc := x.send("pat@patient.example")
				x.decide(acc.ID, "pat@patient.example", method)
				x.deliver("patient.example")

				if n := len(x.sink.Messages()); n != 0 {
					t.Fatalf("the sink received %d messages: a recipient without its key must never get the message in clear", n)
				}
				r := x.recipient(acc.ID, "pat@patient.example")
				if r.State != messages.StateDelivered || r.RemoteHost != "portal" || !strings.Contains(r.SMTPReply, "delivered to the portal") ||
					!strings.Contains(r.SMTPReply, "no longer on file") {
					t.Errorf("recipient %+v", r)
				}
				if r.Encryption == nil || r.Encryption.Method != "portal" || len(r.Encryption.Reasons) != 2 ||
					r.Encryption.Reasons[0] != "decided at acceptance" {
					t.Errorf("encryption shown %+v: want portal with the fallback's reason added", r.Encryption)
				}
				if n := x.portalCopies(acc.ID, 0); n != 1 {
					t.Errorf("%d portal copies, want 1", n)
				}
				if n := x.counter("sealpost_delivery_secure_fallbacks_total", map[string]string{"reason": "key_unavailable", "to": "portal"}); n != 1 {
					t.Errorf("fallbacks counted %v, want 1", n)
				}
				// Delivered once: nothing is due any more.
				x.advance(time.Hour)
				x.deliver("patient.example")
				if n := x.portalCopies(acc.ID, 0); n != 1 {
					t.Errorf("after another run: %d portal copies, want 1", n)
				}
			})
		})
	}
}

func TestTLSRecipientNeverGoesOverUnverifiedTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		domain string
		mode   secureline.Mode
		portal bool // else deferred
		why    string
	}{
		{"certificate for another name, forced TLS: the portal", "wrongname.example", secureline.ModeForcedTLS, true, "mx.wrongname.example offers no verified TLS"},
		{"no STARTTLS, forced TLS: the portal", "plain.example", secureline.ModeForcedTLS, true, "mx.plain.example does not offer STARTTLS"},
		{"certificate for another name, TLS-exclusive: deferred", "wrongname.example", secureline.ModeTLSExclusive, false, "TLS-exclusive"},
		{"no STARTTLS, TLS-exclusive: deferred", "plain.example", secureline.ModeTLSExclusive, false, "does not offer STARTTLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				// Opportunistic policy: without the decision both would go out.
				x := newSecureWorld(t, s, delivery.TLSOpportunistic)
				x.setMode(tc.mode)
				pat, sam := "pat@"+tc.domain, "sam@"+tc.domain
				acc := x.send(pat, sam)
				x.decide(acc.ID, pat, "tls")
				x.deliver(tc.domain)

				var got []smtptest.Received
				got = append(x.sink.Messages(), x.plain.Messages()...)
				if len(got) != 1 || len(got[0].Rcpts) != 1 || got[0].Rcpts[0] != sam {
					t.Fatalf("received %+v: want only sam's copy (no decision: the TLS policy alone)", got)
				}
				r := x.recipient(acc.ID, pat)
				if !strings.Contains(r.SMTPReply, tc.why) {
					t.Errorf("reply %q lacks %q", r.SMTPReply, tc.why)
				}
				if tc.portal {
					if r.State != messages.StateDelivered || r.RemoteHost != "portal" || x.portalCopies(acc.ID, 0) != 1 {
						t.Errorf("pat: %+v, %d portal copies; want delivered to the portal", r, x.portalCopies(acc.ID, 0))
					}
					return
				}
				if r.State != messages.StateDeferred || x.portalCopies(acc.ID, 0) != 0 {
					t.Errorf("pat: %+v, %d portal copies; want deferred", r, x.portalCopies(acc.ID, 0))
				}
				// At the end of its lifetime it bounces, never sent otherwise.
				x.advance(24*time.Hour - 30*time.Second)
				x.deliver(tc.domain)
				if r := x.recipient(acc.ID, pat); r.State != messages.StateBounced {
					t.Errorf("at the end of the lifetime: %+v", r)
				}
				if n := len(x.sink.Messages()) + len(x.plain.Messages()); n != 1 {
					t.Errorf("%d messages received in all, want 1", n)
				}
			})
		})
	}
}

func TestTLSRecipientTakesOnlyAVerifiedConnection(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		// mixed.example's preferred MX has a certificate for other names,
		// which opportunistic TLS accepts; its second MX verifies.
		x := newSecureWorld(t, s, delivery.TLSOpportunistic)
		first := x.send("a@mixed.example")
		x.deliver("mixed.example") // leaves the unverified connection idle in the pool
		if r := x.recipient(first.ID, "a@mixed.example"); r.State != messages.StateDelivered || r.RemoteHost != "mx.wrongname.example" {
			t.Fatalf("no decision: %+v", r)
		}
		second := x.send("b@mixed.example", "c@mixed.example")
		x.decide(second.ID, "b@mixed.example", "tls")
		x.deliver("mixed.example")
		if r := x.recipient(second.ID, "b@mixed.example"); r.State != messages.StateDelivered || r.RemoteHost != "mx2.patient.example" || r.TLSVersion == "" {
			t.Errorf("tls recipient: %+v: want delivered over the MX that verifies", r)
		}
		if r := x.recipient(second.ID, "c@mixed.example"); r.State != messages.StateDelivered {
			t.Errorf("recipient without a decision: %+v", r)
		}
		if n := x.counter("sealpost_delivery_secure_delivered_total", map[string]string{"method": "tls"}); n != 1 {
			t.Errorf("tls deliveries counted %v, want 1", n)
		}
		if n := x.counter("sealpost_delivery_secure_delivered_total", map[string]string{"method": "none"}); n != 2 {
			t.Errorf("deliveries without a decision counted %v, want 2", n)
		}
	})
}

func TestTLSRecipientOverVerifiedTLSIsDeliveredWithItsMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSecureWorld(t, s, delivery.TLSOpportunistic)
		acc := x.send("pat@patient.example", "sam@patient.example", "kim@patient.example")
		x.decide(acc.ID, "pat@patient.example", "tls")
		x.decide(acc.ID, "sam@patient.example", "tls")
		x.decide(acc.ID, "kim@patient.example", "tls_opportunistic")
		x.deliver("patient.example")
		got := x.sink.Messages()
		if len(got) != 2 {
			t.Fatalf("%d transactions, want 2: the tls recipients together, the opportunistic one apart", len(got))
		}
		for _, m := range got {
			if !m.TLS {
				t.Errorf("a transaction went without TLS: %v", m.Rcpts)
			}
			// The claim returns recipients in no particular order.
			rcpts := slices.Sorted(slices.Values(m.Rcpts))
			if len(rcpts) == 2 && (rcpts[0] != "pat@patient.example" || rcpts[1] != "sam@patient.example") {
				t.Errorf("tls group: %v", m.Rcpts)
			}
		}
		for _, r := range x.status(acc.ID).Recipients {
			if r.State != messages.StateDelivered || r.RemoteHost != "mx.patient.example" {
				t.Errorf("recipient %+v", r)
			}
		}
	})
}

func TestPortalNoticeWithoutVerifiedTLSNeverLoopsIntoThePortal(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSecureWorld(t, s, delivery.TLSOpportunistic)
		notice := x.actor
		notice.Principal.ActorKind, notice.Principal.ActorID = auth.ActorSystem, "portal"
		acc, err := x.msgs.Send(context.Background(), notice, messages.Request{From: "Clinic <reminders@clinic.example>",
			To: []string{"pat@wrongname.example"}, Subject: "You have a secure message", Text: "Open https://portal.test/p/…",
			Tags: []string{"sealpost-portal", "portal-link"}, Encryption: "tls"}, "")
		x.must(err)
		// Acceptance records the portal's notices as "notice" (package
		// messages tests that); delivery reads only that marker.
		x.decide(acc.ID, "pat@wrongname.example", "notice")
		x.deliver("wrongname.example")
		if r := x.recipient(acc.ID, "pat@wrongname.example"); r.State != messages.StateDelivered || r.RemoteHost != "mx.wrongname.example" ||
			x.portalCopies(acc.ID, 0) != 0 {
			t.Errorf("notice: %+v, %d portal copies: want delivered under the TLS policy, never to the portal", r, x.portalCopies(acc.ID, 0))
		}
	})
}

func TestRecipientWithAMethodDeliveryDoesNotSendIsNeverSent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method string
		state        string
		portal       int
	}{
		{"a portal recipient left over from acceptance is deposited", "portal", messages.StateDelivered, 1},
		{"an unknown method is deferred", "carrier_pigeon", messages.StateDeferred, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				x := newSecureWorld(t, s, delivery.TLSOpportunistic)
				acc := x.send("pat@patient.example", "sam@patient.example")
				x.decide(acc.ID, "pat@patient.example", tc.method)
				x.deliver("patient.example")
				got := x.sink.Messages()
				if len(got) != 1 || len(got[0].Rcpts) != 1 || got[0].Rcpts[0] != "sam@patient.example" {
					t.Fatalf("received %+v: want only sam's copy", got)
				}
				if r := x.recipient(acc.ID, "pat@patient.example"); r.State != tc.state || x.portalCopies(acc.ID, 0) != tc.portal {
					t.Errorf("pat: %+v, %d portal copies", r, x.portalCopies(acc.ID, 0))
				}
			})
		})
	}
}

package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/smime"
)

func TestSecureLineCostMeasuresEveryVariantOnCheckedOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server per store and delivers a few hundred messages")
	}
	for _, st := range storeTargets(t) {
		t.Run(st.Name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := SecureLineConfig{Messages: 12, Rounds: 2, Domains: 2, Batch: 5, Warmup: 3, DecryptEvery: 1, SMIMESigned: true,
				AttachmentBytes: 2000, Store: st, Launch: InProcessLauncher(dir + "/server.log"), Dir: dir, Log: t.Logf,
				ServerEnv: []string{"SEALPOST_LOG_LEVEL=warn", "SEALPOST_QUEUE_POLL_INTERVAL=100ms"}}
			rep, err := SecureLineCost(context.Background(), cfg)
			if err != nil {
				logErrors(t, dir+"/server.log")
				t.Fatal(err)
			}
			var ids []string
			for _, f := range rep.Figures {
				ids = append(ids, f.ID)
				// Every message arrived and passed the sink's check; the
				// encrypted ones were all decrypted (DecryptEvery 1).
				if f.Messages != 12 || f.Delivered != 12 || f.PerSecond() <= 0 || f.CPU <= 0 || f.P50 <= 0 || f.P99 < f.P50 ||
					!strings.HasPrefix(f.Notes, "all 12 checked") || strings.Count(f.Notes, " / ") != 1 {
					t.Errorf("figure %s: %+v", f.ID, f)
				}
				encrypted := f.ID == "pgp" || f.ID == "smime" || f.ID == "smimesig"
				if encrypted != strings.Contains(f.Notes, "12 decrypted") {
					t.Errorf("figure %s: decryption notes %q", f.ID, f.Notes)
				}
			}
			if got := strings.Join(ids, ","); got != "tls,pgp,smime,smimesig,portal" {
				t.Fatalf("variants measured: %s", got)
			}
			table := rep.Markdown()
			for _, want := range []string{"| TLS only (baseline) |", "| PGP | ", "| S/MIME signed |", "| Portal |", "against TLS only, same run", "× |"} {
				if !strings.Contains(table, want) {
					t.Errorf("table lacks %q:\n%s", want, table)
				}
			}
			t.Log("\n" + table)
		})
	}
}

// lineSamples are real messages of every kind, made with the libraries
// the server uses, and wrong ones, for the sink's checks.
type lineSamples struct {
	keys                              *lineKeys
	addr                              string
	plain, pgp, pgpOther, smime       []byte
	smimeSigned, clearSigned, notice  []byte
	signedDataAsEnveloped, bareNotice []byte
	noBody                            []byte
}

func newLineSamples(t *testing.T) lineSamples {
	t.Helper()
	keys, err := newLineKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := lineSamples{keys: keys, addr: lineRcpt("pgp", 7, 2)}
	text, html := lineBody(4000)
	s.plain = composeLine(t, s.addr, lineSubject, text, html)
	s.noBody = composeLine(t, s.addr, lineSubject, "Please call the clinic.", "")
	s.pgp = pgpFor(t, keys, s.addr, s.plain)
	s.pgpOther = pgpFor(t, keys, lineRcpt("pgp", 8, 2), s.plain)

	policy := smime.Policy{Roots: keys.roots()}
	if _, err := keys.smimeUpload(s.addr); err != nil {
		t.Fatal(err)
	}
	cert, _ := keys.smimeRecipient(s.addr)
	rcpt, err := smime.NewRecipient(cert, nil, s.addr, policy, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer, signerCert := lineSigner(t, keys, policy)
	if s.smime, err = smime.Encrypt(s.plain, []*smime.Recipient{rcpt}, nil, smime.Options{}); err != nil {
		t.Fatal(err)
	}
	if s.smimeSigned, err = smime.Encrypt(s.plain, []*smime.Recipient{rcpt}, signer, smime.Options{}); err != nil {
		t.Fatal(err)
	}
	if s.clearSigned, err = smime.Sign(s.plain, signer, smime.Options{}); err != nil {
		t.Fatal(err)
	}
	s.signedDataAsEnveloped = signedDataLabelledEnveloped(t, signerCert, keys)
	s.notice = composeLine(t, s.addr, "You have a secure message from Bench", "Bench sent you a secure message.\n\nOpen it here:\n"+linePublicURL+"/p/abc\n", "")
	s.bareNotice = composeLine(t, s.addr, "You have a secure message from Bench", "Bench sent you a secure message.\n", "")
	return s
}

func composeLine(t *testing.T, to, subject, text, html string) []byte {
	t.Helper()
	from, err := mail.ParseAddress("from", lineFrom)
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := mail.ParseAddress("to", to)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := mail.Build(mail.Draft{From: from, To: []mail.Address{rcpt}, Subject: subject, Text: text, HTML: html, Date: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// pgpFor encrypts msg to a new key made for keyAddr.
func pgpFor(t *testing.T, keys *lineKeys, keyAddr string, msg []byte) []byte {
	t.Helper()
	body, err := keys.pgpUpload(keyAddr)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pgpmime.ParsePublicKey([]byte(body.(map[string]string)["public_key"]), keyAddr, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgpmime.Encrypt(msg, []*pgpmime.PublicKey{pub}, nil, pgpmime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lineSigner(t *testing.T, keys *lineKeys, policy smime.Policy) (*smime.Signer, *x509.Certificate) {
	t.Helper()
	const from = "reminders@clinic.example"
	body, err := keys.senderUpload(from)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(body.(map[string]string)["certificate"]))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := smime.NewSigner(cert, nil, keys.senderKey, from, policy, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return signer, cert
}

// signedDataLabelledEnveloped is a CMS SignedData wearing the
// Content-Type of enveloped-data: readable by anyone, so not encrypted.
func signedDataLabelledEnveloped(t *testing.T, cert *x509.Certificate, keys *lineKeys) []byte {
	t.Helper()
	sd, err := pkcs7.NewSignedData([]byte("signed, not encrypted"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(cert, keys.senderKey, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("From: " + lineFrom + "\r\nTo: <" + lineRcpt("smime", 1, 2) + ">\r\nSubject: Encrypted message\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(der)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

// withHeader adds a header field at the top of msg.
func withHeader(msg []byte, field string) []byte {
	return append([]byte(field+"\r\n"), msg...)
}

func TestSinkRefusesMessagesThatAreNotWhatTheVariantClaims(t *testing.T) {
	s := newLineSamples(t)
	for _, c := range []struct {
		name string
		kind lineKind
		raw  []byte
		ok   bool
	}{
		{"the composed message passes as TLS only", kindTLS, s.plain, true},
		{"an encrypted message is not TLS only", kindTLS, s.pgp, false},
		{"a message without the body is not TLS only", kindTLS, s.noBody, false},
		{"PGP/MIME passes as PGP", kindPGP, s.pgp, true},
		{"the composed message is not PGP", kindPGP, s.plain, false},
		{"S/MIME is not PGP", kindPGP, s.smime, false},
		{"PGP/MIME showing the real subject outside is refused", kindPGP, withHeader(s.pgp, "X-Subject: "+lineSubject), false},
		{"S/MIME enveloped-data passes as S/MIME", kindSMIME, s.smime, true},
		{"signed S/MIME passes the shape check of its variant", kindSMIMESigned, s.smimeSigned, true},
		{"signed-data labelled enveloped-data is refused", kindSMIME, s.signedDataAsEnveloped, false},
		{"a clear-signed message is not S/MIME encrypted", kindSMIME, s.clearSigned, false},
		{"PGP/MIME is not S/MIME", kindSMIME, s.pgp, false},
		{"the link notice passes as portal", kindPortal, s.notice, true},
		{"a notice that carries the body is refused", kindPortal, withHeader(s.notice, "X-Ref: "+lineMarker), false},
		{"a notice without a portal link is refused", kindPortal, s.bareNotice, false},
		{"the message itself is not a portal notice", kindPortal, s.plain, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkShape(c.kind, c.raw)
			t.Log(err)
			if (err == nil) != c.ok {
				t.Fatalf("checkShape(%s) = %v, want ok %v", c.kind, err, c.ok)
			}
		})
	}
}

func TestSinkOpensSampledMessagesWithTheRecipientsKey(t *testing.T) {
	s := newLineSamples(t)
	for _, c := range []struct {
		name string
		kind lineKind
		raw  []byte
		ok   bool
	}{
		{"PGP/MIME opens with the recipient's key and holds the message", kindPGP, s.pgp, true},
		{"PGP/MIME to another key does not open", kindPGP, s.pgpOther, false},
		{"S/MIME opens with the recipient's certificate and holds the message", kindSMIME, s.smime, true},
		{"signed S/MIME opens and its signature verifies to the test CA", kindSMIMESigned, s.smimeSigned, true},
		{"unsigned S/MIME is not the signed variant", kindSMIMESigned, s.smime, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkOpens(c.kind, c.raw, s.addr, s.keys)
			t.Log(err)
			if (err == nil) != c.ok {
				t.Fatalf("checkOpens(%s) = %v, want ok %v", c.kind, err, c.ok)
			}
		})
	}
}

func TestLineRecipientCarriesVariantAndNumber(t *testing.T) {
	for _, c := range []struct {
		name, rcpt, label string
		seq               int
		ok                bool
	}{
		{"a variant's recipient", lineRcpt("smimesig", 1234, 4), "smimesig", 1234, true},
		{"number zero", "tls-0@d0.example", "tls", 0, true},
		{"no number", "tls-@d0.example", "", 0, false},
		{"no label", "-3@d0.example", "", 0, false},
		{"the sender", "reminders@clinic.example", "", 0, false},
		{"an absurd number", "tls-99999999999@d0.example", "", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			label, seq, ok := parseLineRcpt(c.rcpt)
			if ok != c.ok || (ok && (label != c.label || seq != c.seq)) {
				t.Fatalf("parseLineRcpt(%q) = %q, %d, %v", c.rcpt, label, seq, ok)
			}
		})
	}
}

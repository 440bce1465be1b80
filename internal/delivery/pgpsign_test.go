package delivery_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// gnupg is a throw-away GnuPG home.
type gnupg struct {
	t    *testing.T
	home string
}

// newGnuPG makes a GnuPG home, or skips the test when gpg is missing.
func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not installed (apt-get install gnupg): skipping the GnuPG signature interoperability test")
	}
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket must fit in sun_path
	if err != nil {
		t.Fatal(err)
	}
	g := &gnupg{t: t, home: home}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = g.env()
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	return g
}

func (g *gnupg) env() []string { return append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C") }

// run runs gpg in batch mode with passphrase for any secret key it needs.
func (g *gnupg) run(stdin []byte, passphrase string, args ...string) []byte {
	g.t.Helper()
	base := []string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", passphrase}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Env, cmd.Stdin = g.env(), bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %s: %v", strings.Join(args, " "), errors.Join(err, errors.New(stderr.String())))
	}
	return stdout.Bytes()
}

// senderKey is a sender key as uploaded, and the public key and primary
// fingerprint a recipient verifies its signatures with.
type senderKey struct {
	upload      keys.Upload
	public      []byte
	fingerprint string
}

// goCryptoSender is an unprotected Ed25519 key for the sender address.
func goCryptoSender(t *testing.T, address string) senderKey {
	e := keystest.PGPEntity(t, address, keystest.PGPSpec{})
	return senderKey{upload: keys.Upload{Address: address, PrivateKey: string(keystest.ArmorPrivate(t, e))},
		public: keystest.ArmorPublic(t, e), fingerprint: strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))}
}

// gnupgDomainSender is an RSA-2048 signing key made and exported by
// GnuPG itself, passphrase-protected, uploaded for the whole domain of
// its user id.
func gnupgDomainSender(t *testing.T, uid, domain string) senderKey {
	g := newGnuPG(t)
	const pass = "sender passphrase"
	g.run(nil, pass, "--quick-gen-key", uid, "rsa2048", "sign", "never")
	m := regexp.MustCompile(`(?m)^fpr:+([0-9A-F]{40}):`).FindSubmatch(g.run(nil, "", "--with-colons", "--list-keys", uid))
	if m == nil {
		t.Fatal("no fingerprint from gpg --list-keys")
	}
	private := g.run(nil, pass, "--armor", "--export-secret-keys", string(m[1]))
	return senderKey{upload: keys.Upload{Domain: domain, PrivateKey: string(private), Passphrase: pass},
		public: g.run(nil, "", "--armor", "--export", string(m[1])), fingerprint: string(m[1])}
}

// Issue 5: GnuPG decrypts our PGP messages with the recipient's key and
// verifies the sender's signature on them (RFC 3156 §6.2).
func TestPGPMessageFromASenderWithAKeyIsSignedAndGnuPGVerifiesIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sender func(t *testing.T) *senderKey // nil: no sender key
	}{
		{"Ed25519 sender key for the address", func(t *testing.T) *senderKey {
			k := goCryptoSender(t, "reminders@clinic.example")
			return &k
		}},
		{"passphrase-protected GnuPG RSA key for the domain", func(t *testing.T) *senderKey {
			k := gnupgDomainSender(t, "Clinic <noreply@clinic.example>", "clinic.example")
			return &k
		}},
		{"no sender key: encrypted, unsigned", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sender *senderKey
			if tc.sender != nil {
				sender = tc.sender(t)
			}
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				x := newSecureWorld(t, s, delivery.TLSRequired)
				ctx := context.Background()
				rcpt := keystest.PGPEntity(t, "pat@patient.example", keystest.PGPSpec{})
				_, err := x.keys.UploadPGP(ctx, x.actor, keys.Upload{Address: "pat@patient.example", PublicKey: string(keystest.ArmorPublic(t, rcpt))})
				x.must(err)
				if sender != nil {
					_, err := x.keys.UploadPGPSender(ctx, x.actor, sender.upload)
					x.must(err)
				}
				acc := x.send("pat@patient.example")
				x.decide(acc.ID, "pat@patient.example", "pgp")
				x.deliver("patient.example")

				enc := to(t, x.sink.Messages(), "pat@patient.example")
				if !bytes.Contains(enc.Data, []byte(`Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"`)) ||
					bytes.Contains(enc.Data, []byte("Tomorrow at")) {
					t.Fatalf("pat's copy is not PGP/MIME only:\n%.600s", enc.Data)
				}
				x.verifyDKIM(enc.Data)
				if r := x.recipient(acc.ID, "pat@patient.example"); r.State != messages.StateDelivered {
					t.Fatalf("pat: %+v", r)
				}

				checkSignedByGo(t, part(t, enc.Data, "application/octet-stream"), rcpt, sender)

				// The recipient's GnuPG holds the recipient's secret key
				// and the sender's public key, as a patient's would.
				g := newGnuPG(t)
				g.run(keystest.ArmorPrivate(t, rcpt), "", "--import")
				if sender != nil {
					g.run(sender.public, "", "--import")
				}
				plain := filepath.Join(t.TempDir(), "plain.eml")
				status := string(g.run(part(t, enc.Data, "application/octet-stream"), "", "--status-fd", "1", "--output", plain, "--decrypt"))
				for _, want := range []string{"[GNUPG:] DECRYPTION_OKAY", "[GNUPG:] GOODMDC"} {
					if !strings.Contains(status, want) {
						t.Errorf("gpg status lacks %q:\n%s", want, status)
					}
				}
				if sender == nil {
					if strings.Contains(status, "SIG ") {
						t.Errorf("gpg reports a signature on a message from a sender without a key:\n%s", status)
					}
				} else {
					validsig := regexp.MustCompile(`(?m)^\[GNUPG:\] VALIDSIG .*` + sender.fingerprint)
					if !strings.Contains(status, "[GNUPG:] GOODSIG ") || !validsig.MatchString(status) {
						t.Errorf("gpg does not report GOODSIG and VALIDSIG for the sender key %s:\n%s", sender.fingerprint, status)
					}
				}
				got, err := os.ReadFile(plain)
				x.must(err)
				if !bytes.Contains(got, []byte("Subject: Your appointment")) || !bytes.Contains(got, []byte("Tomorrow at 9:00")) {
					t.Errorf("GnuPG's plaintext lacks the real subject or the text:\n%.600s", got)
				}
			})
		})
	}
}

// checkSignedByGo decrypts armored with go-crypto and checks it is
// signed by sender's key (unsigned without one), so the rule holds where
// gpg is not installed.
func checkSignedByGo(t *testing.T, armored []byte, rcpt *openpgp.Entity, sender *senderKey) {
	t.Helper()
	ring := openpgp.EntityList{rcpt}
	if sender != nil {
		pub, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(sender.public))
		if err != nil {
			t.Fatal(err)
		}
		ring = append(ring, pub...)
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	md, err := openpgp.ReadMessage(block.Body, ring, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(md.UnverifiedBody); err != nil {
		t.Fatal(err)
	}
	switch {
	case sender == nil && md.IsSigned:
		t.Error("a message from a sender without a key is signed")
	case sender != nil && (!md.IsSigned || md.SignedBy == nil || md.SignatureError != nil):
		t.Errorf("signed %v, by a known key %v, error %v; want a good signature by the sender key", md.IsSigned, md.SignedBy != nil, md.SignatureError)
	case sender != nil && strings.ToUpper(hex.EncodeToString(md.SignedBy.Entity.PrimaryKey.Fingerprint)) != sender.fingerprint:
		t.Errorf("signed by %X, want the sender key %s", md.SignedBy.Entity.PrimaryKey.Fingerprint, sender.fingerprint)
	}
}

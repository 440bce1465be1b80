package pgpmime_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/pgpmime"
)

// gnupg is a throw-away GnuPG home for one test.
type gnupg struct {
	t    *testing.T
	home string
}

func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not installed (apt-get install gnupg): skipping the GnuPG interoperability test")
	}
	// A short path: gpg-agent's socket must fit in sun_path.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
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

func (g *gnupg) env() []string {
	return append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C")
}

// run runs gpg in batch mode and returns stdout; stderr goes into the
// failure message.
func (g *gnupg) run(stdin []byte, args ...string) ([]byte, error) {
	g.t.Helper()
	base := []string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Env = g.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), errors.Join(err, errors.New(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func (g *gnupg) must(stdin []byte, args ...string) []byte {
	g.t.Helper()
	out, err := g.run(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpg %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// genKey makes an Ed25519 key with a Curve25519 encryption subkey with
// gpg itself and returns its fingerprint; extra is passed before the
// command (e.g. --faked-system-time).
func (g *gnupg) genKey(uid, expire string, extra ...string) string {
	g.t.Helper()
	return g.genKeyAlgo(uid, "future-default", expire, extra...)
}

// genKeyAlgo is genKey with another algorithm (e.g. rsa2048).
func (g *gnupg) genKeyAlgo(uid, algo, expire string, extra ...string) string {
	g.t.Helper()
	args := append(extra, "--quick-gen-key", uid, algo, "default", expire)
	g.must(nil, args...)
	out := g.must(nil, "--with-colons", "--list-keys", uid)
	m := regexp.MustCompile(`(?m)^fpr:+([0-9A-F]{40}):`).FindSubmatch(out)
	if m == nil {
		g.t.Fatalf("no fingerprint in gpg output:\n%s", out)
	}
	if algo != "future-default" {
		// With an explicit algorithm gpg makes only a sign+certify
		// primary key (which ParsePublicKey rightly refuses): add the
		// encryption subkey a real user's key has.
		g.must(nil, "--quick-add-key", string(m[1]), algo, "encr", expire)
	}
	return string(m[1])
}

func TestGnuPGDecryptsAndVerifies(t *testing.T) {
	t.Parallel()
	g := newGnuPG(t)
	now := time.Now()
	sender := newEntity(t, "Clinic", clinic, 0)
	g.must(armorPublic(t, sender), "--import")
	signer, err := pgpmime.ParseSigningKey(armorPrivate(t, sender), nil, clinic, now)
	if err != nil {
		t.Fatal(err)
	}
	msg := message(t, clinic, patient, "Your lab results: HbA1c", 20_000)

	for _, tc := range []struct {
		name, address, algo string
		signer              *pgpmime.SigningKey
	}{
		{"signed and encrypted to a GnuPG Curve25519 key", "rita@patients.example", "future-default", signer},
		{"signed and encrypted to a GnuPG RSA-2048 key", "ravi@patients.example", "rsa2048", signer},
		{"encrypted only", "rosa@patients.example", "future-default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fpr := g.genKeyAlgo("Patient <"+tc.address+">", tc.algo, "never")
			to, err := pgpmime.ParsePublicKey(g.must(nil, "--armor", "--export", tc.address), tc.address, time.Now())
			if err != nil {
				t.Fatalf("a key GnuPG made is refused: %v", err)
			}
			if to.Fingerprint != fpr {
				t.Fatalf("fingerprint %s, GnuPG says %s", to.Fingerprint, fpr)
			}
			out, err := pgpmime.Encrypt(msg, []*pgpmime.PublicKey{to}, tc.signer, pgpmime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkOuterHeader(t, out)
			_, armored := splitPGPMIME(t, out)

			plain := filepath.Join(t.TempDir(), "plain.eml")
			status := g.must(armored, "--status-fd", "1", "--output", plain, "--decrypt")
			want := []string{
				"[GNUPG:] DECRYPTION_OKAY",
				"[GNUPG:] GOODMDC",
				// RFC 4880 §9.2: cipher algorithm 9 is AES-256; mdc method 2.
				"[GNUPG:] DECRYPTION_INFO 2 9",
			}
			if tc.signer != nil {
				want = append(want, "[GNUPG:] GOODSIG ", "[GNUPG:] VALIDSIG "+fmtFingerprint(sender.PrimaryKey.Fingerprint))
			} else if bytes.Contains(status, []byte("SIG ")) {
				t.Errorf("gpg reports a signature on an unsigned message:\n%s", status)
			}
			for _, w := range want {
				if !bytes.Contains(status, []byte(w)) {
					t.Errorf("gpg status lacks %q:\n%s", w, status)
				}
			}
			got, err := os.ReadFile(plain)
			if err != nil {
				t.Fatal(err)
			}
			checkInnerEntity(t, got)
			_, body, _ := bytes.Cut(headerCRLF(msg), []byte("\r\n\r\n"))
			if !bytes.HasSuffix(got, body) {
				t.Error("GnuPG's plaintext does not end with the original body")
			}
		})
	}
}

func TestGnuPGKeysRefused(t *testing.T) {
	t.Parallel()
	g := newGnuPG(t)

	t.Run("expired key made by GnuPG is refused", func(t *testing.T) {
		// Created in 2020 with a one-day lifetime.
		g.genKey("Old <old@patients.example>", "1d", "--faked-system-time", "20200101T000000!")
		armored := g.must(nil, "--armor", "--export", "old@patients.example")
		if _, err := pgpmime.ParsePublicKey(armored, "old@patients.example", time.Now()); !errors.Is(err, pgpmime.ErrKeyExpired) {
			t.Fatalf("error = %v, want ErrKeyExpired", err)
		}
	})
	t.Run("revoked key made by GnuPG is refused", func(t *testing.T) {
		fpr := g.genKey("Gone <gone@patients.example>", "never")
		// GnuPG 2.1+ leaves a revocation certificate for every new key; its
		// armor line is escaped with ":" so it is not imported by accident.
		rev, err := os.ReadFile(filepath.Join(g.home, "openpgp-revocs.d", fpr+".rev"))
		if err != nil {
			t.Skipf("no revocation certificate from this GnuPG: %v", err)
		}
		rev = bytes.Replace(rev, []byte(":-----BEGIN PGP PUBLIC KEY BLOCK"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK"), 1)
		g.must(rev, "--import")
		armored := g.must(nil, "--armor", "--export", "gone@patients.example")
		if _, err := pgpmime.ParsePublicKey(armored, "gone@patients.example", time.Now()); !errors.Is(err, pgpmime.ErrKeyRevoked) {
			t.Fatalf("error = %v, want ErrKeyRevoked", err)
		}
	})
	t.Run("GnuPG key for a different address is refused", func(t *testing.T) {
		g.genKey("Sam <sam@patients.example>", "never")
		armored := g.must(nil, "--armor", "--export", "sam@patients.example")
		if _, err := pgpmime.ParsePublicKey(armored, patient, time.Now()); !errors.Is(err, pgpmime.ErrAddressMismatch) {
			t.Fatalf("error = %v, want ErrAddressMismatch", err)
		}
	})
	t.Run("GnuPG signing-only key is refused for encryption", func(t *testing.T) {
		g.must(nil, "--quick-gen-key", "Sig <sig@patients.example>", "ed25519", "sign", "never")
		armored := g.must(nil, "--armor", "--export", "sig@patients.example")
		if _, err := pgpmime.ParsePublicKey(armored, "sig@patients.example", time.Now()); !errors.Is(err, pgpmime.ErrNoEncryptionKey) {
			t.Fatalf("error = %v, want ErrNoEncryptionKey", err)
		}
	})
}

func fmtFingerprint(fp []byte) string {
	const hexdigits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(fp))
	for _, b := range fp {
		out = append(out, hexdigits[b>>4], hexdigits[b&15])
	}
	return string(out)
}

// headerCRLF returns msg with CRLF line ends (what the inner entity has).
func headerCRLF(msg []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

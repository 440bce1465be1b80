package wkdtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// GnuPG is a throw-away GnuPG home for one test.
type GnuPG struct {
	t    testing.TB
	home string
}

// NewGnuPG makes a GnuPG home, removed at cleanup; it skips the test
// with a clear message when gpg is not installed.
func NewGnuPG(t testing.TB) *GnuPG {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not installed (apt-get install gnupg): skipping the test that needs a GnuPG key")
	}
	// A short path: gpg-agent's socket must fit in sun_path.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &GnuPG{t: t, home: home}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = g.env()
		_ = cmd.Run()
		_ = os.RemoveAll(home)
	})
	return g
}

func (g *GnuPG) env() []string { return append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C") }

// Run runs gpg in batch mode with stdin and returns its output; the
// test fails with gpg's stderr when it fails.
func (g *GnuPG) Run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	base := []string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Env = g.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %s: %v", strings.Join(args, " "), errors.Join(err, errors.New(stderr.String())))
	}
	return stdout.Bytes()
}

var fingerprintLine = regexp.MustCompile(`(?m)^fpr:+([0-9A-F]{40}):`)

// GenKey makes an Ed25519 key with a Curve25519 encryption subkey for
// uid ("Name <address>") that does not expire, and returns its
// fingerprint.
func (g *GnuPG) GenKey(uid string) string {
	g.t.Helper()
	g.Run(nil, "--quick-gen-key", uid, "future-default", "default", "never")
	m := fingerprintLine.FindSubmatch(g.Run(nil, "--with-colons", "--list-keys", uid))
	if m == nil {
		g.t.Fatalf("no fingerprint for %s", uid)
	}
	return string(m[1])
}

// Export returns the public key fpr in binary form (what a directory
// serves), or armored.
func (g *GnuPG) Export(fpr string, armored bool) []byte {
	g.t.Helper()
	if armored {
		return g.Run(nil, "--armor", "--export", fpr)
	}
	return g.Run(nil, "--export", fpr)
}

// WKDHash returns the hashed local part gpg itself computes for the
// key's user id (--with-wkd-hash), to check Hash against.
func (g *GnuPG) WKDHash(fpr string) string {
	g.t.Helper()
	out := g.Run(nil, "--with-wkd-hash", "--list-keys", fpr)
	m := regexp.MustCompile(`(?m)^\s+([ybndrfg8ejkmcpqxot1uwisza345h769]{32})@`).FindSubmatch(out)
	if m == nil {
		g.t.Fatalf("no WKD hash in gpg output:\n%s", out)
	}
	return string(m[1])
}

// Decrypt has gpg decrypt data (armored or binary) with the home's keys.
func (g *GnuPG) Decrypt(data []byte) []byte {
	g.t.Helper()
	return g.Run(data, "--decrypt")
}

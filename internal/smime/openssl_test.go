package smime_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/smime"
)

// openssl runs the openssl command line in dir and returns stdout.
type openssl struct {
	t   *testing.T
	dir string
}

func newOpenSSL(t *testing.T) *openssl {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (apt-get install openssl): skipping the OpenSSL interoperability test")
	}
	return &openssl{t: t, dir: t.TempDir()}
}

func (o *openssl) write(name string, data []byte) string {
	o.t.Helper()
	p := filepath.Join(o.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		o.t.Fatal(err)
	}
	return p
}

func (o *openssl) run(args ...string) ([]byte, []byte, error) {
	o.t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = o.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

func (o *openssl) must(args ...string) ([]byte, []byte) {
	o.t.Helper()
	out, stderr, err := o.run(args...)
	if err != nil {
		o.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out, stderr
}

func TestOpenSSLDecryptsAndVerifies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	msg := message(t, clinic, patient, "Your lab results: HbA1c", 20_000)
	for _, tc := range []struct {
		name string
		kt   smime.KeyTransport
		// what openssl cms -cmsout -print shows for the key transport
		keyAlg string
		signer *smime.Signer
	}{
		{"signed then encrypted, rsaEncryption key transport", smime.RSAPKCS1v15, "rsaEncryption", f.signer},
		{"signed then encrypted, RSAES-OAEP key transport", smime.RSAOAEP, "rsaesOaep", f.signer},
		{"encrypted only", smime.RSAPKCS1v15, "rsaEncryption", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOpenSSL(t)
			out, err := smime.Encrypt(msg, []*smime.Recipient{f.rcpt}, tc.signer, smime.Options{KeyTransport: tc.kt})
			if err != nil {
				t.Fatal(err)
			}
			o.write("msg.eml", out)
			o.write("rcpt.pem", certPEM(f.rcpt.Cert))
			o.write("rcpt.key", keyPEM(t, f.rcptKey))
			o.write("ca.pem", certPEM(f.root.cert))

			printed, _ := o.must("cms", "-cmsout", "-print", "-in", "msg.eml")
			for _, want := range []string{"aes-256-cbc", tc.keyAlg} {
				if !bytes.Contains(printed, []byte(want)) {
					t.Errorf("openssl cms -print does not show %q", want)
				}
			}

			o.must("cms", "-decrypt", "-recip", "rcpt.pem", "-inkey", "rcpt.key", "-in", "msg.eml", "-out", "signed.eml")
			signed, err := os.ReadFile(filepath.Join(o.dir, "signed.eml"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.signer == nil {
				checkInnerEntity(t, signed)
				return
			}
			if !bytes.HasPrefix(signed, []byte("Content-Type: multipart/signed")) {
				t.Fatalf("decrypted entity is not multipart/signed:\n%.200s", signed)
			}

			// Both the CMS and the older smime front ends must verify the
			// signature and the chain (purpose smimesign) to the root.
			_, stderr := o.must("cms", "-verify", "-CAfile", "ca.pem", "-in", "signed.eml", "-out", "content.eml")
			if !bytes.Contains(stderr, []byte("Verification successful")) {
				t.Errorf("openssl cms -verify: %s", stderr)
			}
			_, stderr = o.must("smime", "-verify", "-CAfile", "ca.pem", "-in", "signed.eml", "-out", "content2.eml")
			if !bytes.Contains(stderr, []byte("Verification successful")) {
				t.Errorf("openssl smime -verify: %s", stderr)
			}
			content, err := os.ReadFile(filepath.Join(o.dir, "content.eml"))
			if err != nil {
				t.Fatal(err)
			}
			checkInnerEntity(t, content)
		})
	}
}

func TestOpenSSLRefusesWrongAnchorAndTampering(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := newOpenSSL(t)
	out, err := smime.Sign(message(t, clinic, patient, "Appointment reminder", 500), f.signer, smime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.write("signed.eml", out)
	o.write("ca.pem", certPEM(f.root.cert))
	o.write("other.pem", certPEM(newCA(t, "Other Root", nil).cert))
	o.write("tampered.eml", bytes.Replace(out, []byte("Line 3 of"), []byte("Line 4 of"), 1))

	_, stderr := o.must("smime", "-verify", "-CAfile", "ca.pem", "-in", "signed.eml", "-out", os.DevNull)
	if !bytes.Contains(stderr, []byte("Verification successful")) {
		t.Fatalf("clear-signed message does not verify: %s", stderr)
	}
	if _, _, err := o.run("smime", "-verify", "-CAfile", "other.pem", "-in", "signed.eml", "-out", os.DevNull); !isExit(err) {
		t.Error("openssl verified the signature against an unrelated root")
	}
	if _, _, err := o.run("smime", "-verify", "-CAfile", "ca.pem", "-in", "tampered.eml", "-out", os.DevNull); !isExit(err) {
		t.Error("openssl verified a tampered message")
	}
}

func isExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

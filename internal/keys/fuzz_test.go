package keys

import (
	"bytes"
	"strings"
	"testing"
)

// The parsers of uploaded material must never panic and never repeat
// their input in an error (it may be a private key).
func FuzzParsePrivateKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := parsePrivateKey("private_key", data)
		// Messages are fixed texts, all shorter than 250 bytes: a bounded
		// message cannot carry a key, and a longer input never appears.
		if err != nil && (len(err.Error()) > 250 || (len(data) > 250 && strings.Contains(err.Error(), string(bytes.TrimSpace(data))))) {
			t.Fatalf("error may echo the input: %v", err)
		}
	})
}

func FuzzParseChain(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		leaf, _, chain, err := parseChain("certificate", data)
		if err == nil && (leaf == nil || !strings.HasPrefix(chain, "-----BEGIN CERTIFICATE-----")) {
			t.Fatalf("accepted without a certificate")
		}
	})
}

func FuzzParseCRLs(f *testing.F) {
	f.Add([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseCRLs(data)
	})
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"Rita@Patients.Example", "rita@bücher.example", "Rita <rita@x.example>", "@", "a@[127.0.0.1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := normalizeAddress("address", s)
		if err != nil {
			return
		}
		if a != strings.ToLower(a) || strings.Count(a, "@") < 1 || strings.ContainsAny(a, "<> ") {
			t.Fatalf("normalized %q to %q", s, a)
		}
		if again, err := normalizeAddress("address", a); err != nil || again != a {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, a, again, err)
		}
	})
}

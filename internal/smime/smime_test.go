package smime_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/sealpost/sealpost/internal/smime"
)

func TestValidateRules(t *testing.T) {
	t.Parallel()
	root := newCA(t, "Test Root", nil)
	inter := newCA(t, "Test Issuing CA", root)
	other := newCA(t, "Someone Else's Root", nil)
	policy := smime.Policy{Roots: root.pool()}

	good, _ := inter.issue(t, leafSpec{emails: []string{patient}})
	revoked, _ := inter.issue(t, leafSpec{emails: []string{patient}})
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withCRL := smime.Policy{Roots: root.pool(), CRLs: []*x509.RevocationList{inter.revoke(t, revoked)}}

	type leaf struct {
		spec   leafSpec
		issuer *ca
	}
	tests := []struct {
		name    string
		leaf    leaf
		address string
		usage   smime.Usage
		noRoots bool // validate with no trust anchors
		inter   bool // offer the intermediate
		want    error
	}{
		{name: "valid certificate through an intermediate is accepted", leaf: leaf{spec: leafSpec{emails: []string{patient}}}, inter: true},
		{name: "valid certificate for signing is accepted", leaf: leaf{spec: leafSpec{emails: []string{patient}}}, usage: smime.Signing, inter: true},
		{name: "address compares case-insensitively", leaf: leaf{spec: leafSpec{emails: []string{"Rita@Patients.Example"}}}, inter: true},
		{name: "subject emailAddress is accepted without a SAN", leaf: leaf{spec: leafSpec{subjectEmail: patient}}, inter: true},
		{name: "expired certificate is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}, notAfter: t0.Add(-time.Minute)}}, inter: true, want: smime.ErrCertExpired},
		{name: "not yet valid certificate is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}, notBefore: t0.Add(time.Hour)}}, inter: true, want: smime.ErrCertExpired},
		{name: "certificate without emailProtection is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}, extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}}, inter: true, want: smime.ErrNoEmailProtection},
		{name: "certificate without any extended key usage is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}, extKeyUsage: []x509.ExtKeyUsage{}}}, inter: true, want: smime.ErrNoEmailProtection},
		{name: "certificate for another address is refused", leaf: leaf{spec: leafSpec{emails: []string{"someone@patients.example"}}}, inter: true, want: smime.ErrAddressMismatch},
		{name: "certificate not chaining to the anchors is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}}, issuer: other}, want: smime.ErrUntrusted},
		{name: "certificate whose intermediate is not offered is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}}}, want: smime.ErrUntrusted},
		{name: "no trust anchors configured refuses everything", leaf: leaf{spec: leafSpec{emails: []string{patient}}}, inter: true, noRoots: true, want: smime.ErrUntrusted},
		{name: "signing-only key usage is refused for encryption", leaf: leaf{spec: leafSpec{emails: []string{patient}, keyUsage: x509.KeyUsageDigitalSignature}}, inter: true, want: smime.ErrKeyUsage},
		{name: "encryption-only key usage is refused for signing", leaf: leaf{spec: leafSpec{emails: []string{patient}, keyUsage: x509.KeyUsageKeyEncipherment}}, usage: smime.Signing, inter: true, want: smime.ErrKeyUsage},
		{name: "certificate without a key usage extension is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}, keyUsage: noKeyUsage}}, inter: true, want: smime.ErrKeyUsage},
		{name: "RSA key under 2048 bits is refused", leaf: leaf{spec: leafSpec{emails: []string{patient}, key: weakKey}}, inter: true, want: smime.ErrUnsupportedKey},
		{name: "EC key agreement certificate is refused for encryption (no ECDH support)", leaf: leaf{spec: leafSpec{emails: []string{patient}, key: ecKey, keyUsage: x509.KeyUsageKeyAgreement}}, inter: true, want: smime.ErrUnsupportedKey},
		{name: "EC signing certificate is accepted for signing", leaf: leaf{spec: leafSpec{emails: []string{patient}, key: ecKey, keyUsage: x509.KeyUsageDigitalSignature}}, usage: smime.Signing, inter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			issuer := tt.leaf.issuer
			if issuer == nil {
				issuer = inter
			}
			cert, _ := issuer.issue(t, tt.leaf.spec)
			var inters []*x509.Certificate
			if tt.inter {
				inters = []*x509.Certificate{inter.cert}
			}
			p := policy
			if tt.noRoots {
				p = smime.Policy{}
			}
			address := tt.address
			if address == "" {
				address = patient
			}
			chain, err := smime.Validate(cert, inters, address, tt.usage, p, t0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && len(chain) != 3 {
				t.Fatalf("chain has %d certificates, want leaf, intermediate, root", len(chain))
			}
		})
	}

	t.Run("revoked certificate is refused when a CRL lists it", func(t *testing.T) {
		t.Parallel()
		if _, err := smime.Validate(revoked, []*x509.Certificate{inter.cert}, patient, smime.Encryption, withCRL, t0); !errors.Is(err, smime.ErrRevoked) {
			t.Fatalf("error = %v, want ErrRevoked", err)
		}
		if _, err := smime.Validate(good, []*x509.Certificate{inter.cert}, patient, smime.Encryption, withCRL, t0); err != nil {
			t.Fatalf("a certificate the CRL does not list: %v", err)
		}
	})
	t.Run("an intermediate that expired makes the chain expired", func(t *testing.T) {
		t.Parallel()
		if _, err := smime.Validate(good, []*x509.Certificate{inter.cert}, patient, smime.Encryption, policy, t0.Add(400*24*time.Hour)); !errors.Is(err, smime.ErrCertExpired) {
			t.Fatalf("error = %v, want ErrCertExpired", err)
		}
	})
}

func TestParseCertificates(t *testing.T) {
	t.Parallel()
	root := newCA(t, "Test Root", nil)
	leaf, _ := root.issue(t, leafSpec{emails: []string{patient}})
	tests := []struct {
		name  string
		data  []byte
		want  error
		count int
	}{
		{"PEM leaf and chain are read in order", certPEM(leaf, root.cert), nil, 1},
		{"DER certificate is read", leaf.Raw, nil, 0},
		{"garbage is refused", []byte("not a certificate"), smime.ErrMalformedCert, 0},
		{"PEM private key is refused", keyPEM(t, rsaKeys()[0]), smime.ErrMalformedCert, 0},
		{"corrupted PEM certificate is refused", bytes.Replace(certPEM(leaf), []byte("MII"), []byte("MIX"), 1), smime.ErrMalformedCert, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, inters, err := smime.ParseCertificates(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && (!got.Equal(leaf) || len(inters) != tt.count) {
				t.Fatalf("got leaf %v and %d intermediates", got.Subject, len(inters))
			}
		})
	}
}

// fixture is a root, an issuing CA, a recipient and a signer.
type fixture struct {
	root, inter *ca
	policy      smime.Policy
	rcpt        *smime.Recipient
	rcptKey     crypto.Signer
	signer      *smime.Signer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{root: newCA(t, "Test Root", nil)}
	f.inter = newCA(t, "Test Issuing CA", f.root)
	f.policy = smime.Policy{Roots: f.root.pool()}
	rc, rk := f.inter.issue(t, leafSpec{emails: []string{patient}, key: rsaKeys()[1]})
	r, err := smime.NewRecipient(rc, []*x509.Certificate{f.inter.cert}, patient, f.policy, t0)
	if err != nil {
		t.Fatal(err)
	}
	f.rcpt, f.rcptKey = r, rk
	sc, sk := f.inter.issue(t, leafSpec{emails: []string{clinic}, key: rsaKeys()[2], keyUsage: x509.KeyUsageDigitalSignature})
	s, err := smime.NewSigner(sc, []*x509.Certificate{f.inter.cert}, sk, clinic, f.policy, t0)
	if err != nil {
		t.Fatal(err)
	}
	f.signer = s
	return f
}

func TestNewSignerRefusesAnotherKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := smime.NewSigner(f.signer.Cert, []*x509.Certificate{f.inter.cert}, rsaKeys()[0], clinic, f.policy, t0); !errors.Is(err, smime.ErrKeyMismatch) {
		t.Fatalf("error = %v, want ErrKeyMismatch", err)
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	msg := message(t, clinic, patient, "Your lab results: HbA1c", 2000)
	for _, tc := range []struct {
		name   string
		signer *smime.Signer
		kt     smime.KeyTransport
	}{
		{"encrypted only", nil, smime.RSAPKCS1v15},
		{"signed then encrypted (RFC 8551 §3.6)", f.signer, smime.RSAPKCS1v15},
		{"signed then encrypted with RSAES-OAEP", f.signer, smime.RSAOAEP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := smime.Encrypt(msg, []*smime.Recipient{f.rcpt}, tc.signer, smime.Options{KeyTransport: tc.kt})
			if err != nil {
				t.Fatal(err)
			}
			checkOuterHeader(t, out)
			der := envelopedDER(t, out)
			p7, err := pkcs7.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			inner, err := p7.Decrypt(f.rcpt.Cert, f.rcptKey)
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			if tc.signer == nil {
				checkInnerEntity(t, inner)
				return
			}
			content := verifySigned(t, inner, f.root.pool())
			checkInnerEntity(t, content)
		})
	}
}

func TestSignRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	msg := message(t, clinic, patient, "Appointment reminder", 500)
	out, err := smime.Sign(msg, f.signer, smime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	content := verifySigned(t, out, f.root.pool())
	if !bytes.Contains(content, []byte("Content-Type: text/plain")) {
		t.Errorf("signed entity lacks its Content-Type:\n%s", content)
	}
	if !bytes.Contains(out, []byte("Subject: Appointment reminder\r\n")) {
		t.Error("clear-signed message lost its subject")
	}

	t.Run("8-bit content is refused for clear-signing", func(t *testing.T) {
		raw := []byte("From: " + clinic + "\r\nTo: " + patient + "\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9\r\n")
		if _, err := smime.Sign(raw, f.signer, smime.Options{}); !errors.Is(err, smime.ErrNot7Bit) {
			t.Fatalf("error = %v, want ErrNot7Bit", err)
		}
	})
}

func TestEncryptWithoutRecipientsIsRefused(t *testing.T) {
	t.Parallel()
	if _, err := smime.Encrypt(message(t, clinic, patient, "x", 10), nil, nil, smime.Options{}); !errors.Is(err, smime.ErrNoRecipients) {
		t.Fatalf("error = %v, want ErrNoRecipients", err)
	}
}

// envelopedDER checks the RFC 8551 §3.3 outer structure and returns the
// decoded CMS object.
func envelopedDER(t testing.TB, out []byte) []byte {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("outer message does not parse: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "application/pkcs7-mime" || params["smime-type"] != "enveloped-data" {
		t.Fatalf("Content-Type = %q, want application/pkcs7-mime; smime-type=enveloped-data", m.Header.Get("Content-Type"))
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); cte != "base64" {
		t.Fatalf("Content-Transfer-Encoding = %q, want base64", cte)
	}
	der, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// verifySigned parses a multipart/signed entity (or message), verifies
// its detached signature to roots and returns the signed first part.
func verifySigned(t testing.TB, entity []byte, roots *x509.CertPool) []byte {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(entity))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/signed" || params["protocol"] != "application/pkcs7-signature" || params["micalg"] != "sha-256" {
		t.Fatalf("Content-Type = %q, want multipart/signed; protocol=application/pkcs7-signature; micalg=sha-256", m.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(m.Body)
	// The signed bytes are exactly those between the first delimiter line
	// and the CRLF before the next (RFC 1847 §2.1).
	delim := []byte("--" + params["boundary"] + "\r\n")
	_, rest, ok := bytes.Cut(body, delim)
	if !ok {
		t.Fatal("no first part")
	}
	signed, _, ok := bytes.Cut(rest, []byte("\r\n--"+params["boundary"]))
	if !ok {
		t.Fatal("no second part")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	if _, err := mr.NextPart(); err != nil {
		t.Fatal(err)
	}
	sigPart, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct, _, _ := mime.ParseMediaType(sigPart.Header.Get("Content-Type")); ct != "application/pkcs7-signature" {
		t.Fatalf("signature part Content-Type = %q", ct)
	}
	sig, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, sigPart))
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		t.Fatal(err)
	}
	p7.Content = signed
	if err := p7.VerifyWithChainAtTime(roots, time.Now()); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	return signed
}

func checkOuterHeader(t testing.TB, out []byte) {
	t.Helper()
	head, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	h := strings.ToLower(string(head))
	for _, want := range []string{"from: ", "to: ", "date: ", "message-id: <visit-1@clinic.example>", "subject: encrypted message", "mime-version: 1.0"} {
		if !strings.Contains(h, want) {
			t.Errorf("outer header lacks %q:\n%s", want, head)
		}
	}
	if bytes.Contains(out, []byte("HbA1c")) || bytes.Contains(out, []byte("Glucose")) {
		t.Error("outer message shows the real subject or body")
	}
}

func checkInnerEntity(t testing.TB, body []byte) {
	t.Helper()
	for _, want := range []string{"Subject: Your lab results: HbA1c\r\n", "hp=cipher", "HP-Outer: Subject: Encrypted message\r\n", "Glucose 5.4"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("inner entity lacks %q", want)
		}
	}
}

func BenchmarkSMIMEEncrypt(b *testing.B) {
	f := newFixture(b)
	msg := message(b, clinic, patient, "Your lab results", 20_000)
	for _, bc := range []struct {
		name   string
		signer *smime.Signer
	}{{"encrypt", nil}, {"sign+encrypt", f.signer}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := smime.Encrypt(msg, []*smime.Recipient{f.rcpt}, bc.signer, smime.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package smime_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/mail"
)

// t0 is the tests' "now"; certificates are valid from a day before. It
// is the real time because the library stamps signatures with
// time.Now and openssl verifies against the real clock.
var t0 = time.Now().UTC().Truncate(time.Second)

const (
	patient = "rita@patients.example"
	clinic  = "noreply@clinic.example"
)

// RSA keys are slow to make: the tests share a few.
var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// ca is a certificate authority of the test PKI.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64 = 1000
var serialMu sync.Mutex

func nextSerial() *big.Int {
	serialMu.Lock()
	defer serialMu.Unlock()
	serial++
	return big.NewInt(serial)
}

func newCA(t testing.TB, name string, parent *ca) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Sealpost Test PKI"}},
		NotBefore:             t0.Add(-48 * time.Hour),
		NotAfter:              t0.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: c, key: key}
}

func (c *ca) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// noKeyUsage in a leafSpec leaves the key usage extension out.
const noKeyUsage x509.KeyUsage = -1

// leafSpec describes an end-entity certificate; zero fields get the
// defaults of a good S/MIME certificate for encryption and signing.
type leafSpec struct {
	emails       []string
	subjectEmail string
	keyUsage     x509.KeyUsage
	extKeyUsage  []x509.ExtKeyUsage
	notBefore    time.Time
	notAfter     time.Time
	key          crypto.Signer
}

func (c *ca) issue(t testing.TB, s leafSpec) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	if s.key == nil {
		s.key = rsaKeys()[0]
	}
	if s.keyUsage == 0 {
		s.keyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	if s.extKeyUsage == nil {
		s.extKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
	}
	if s.notBefore.IsZero() {
		s.notBefore = t0.Add(-24 * time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = t0.Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   nextSerial(),
		Subject:        pkix.Name{CommonName: "Test Mailbox"},
		EmailAddresses: s.emails,
		NotBefore:      s.notBefore,
		NotAfter:       s.notAfter,
		KeyUsage:       s.keyUsage,
		ExtKeyUsage:    s.extKeyUsage,
	}
	if s.keyUsage == noKeyUsage {
		tmpl.KeyUsage = 0
	}
	if s.subjectEmail != "" {
		tmpl.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{
			Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: asn1.RawValue{
				Tag: asn1.TagIA5String, Bytes: []byte(s.subjectEmail),
			},
		}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, s.key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, s.key
}

// revoke returns a CRL from c listing cert.
func (c *ca) revoke(t testing.TB, cert *x509.Certificate) *x509.RevocationList {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: t0.Add(-time.Hour),
		NextUpdate: t0.Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: cert.SerialNumber, RevocationTime: t0.Add(-2 * time.Hour)},
		},
	}, c.cert, c.key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func keyPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// message builds a realistic message with internal/mail, padded with
// text to about size bytes.
func message(t testing.TB, from, to, subject string, size int) []byte {
	t.Helper()
	f, err := mail.ParseAddress("from", from)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.ParseAddress("to", to)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	text.WriteString("Your test result is ready. Glucose 5.4 mmol/L.\n")
	for i := 0; text.Len() < size; i++ {
		fmt.Fprintf(&text, "Line %d of the visit summary, nothing unusual noted.\n", i)
	}
	raw, _, err := mail.Build(mail.Draft{
		From:      f,
		To:        []mail.Address{r},
		Subject:   subject,
		Text:      text.String(),
		MessageID: "visit-1@clinic.example",
		Date:      t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

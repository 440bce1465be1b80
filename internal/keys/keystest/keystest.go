// Package keystest makes OpenPGP keys and a small S/MIME PKI for tests
// of the key management API and its consumers: good and deliberately
// bad keys (expired, revoked, sign-only, wrong key usage, other address)
// made with go-crypto and crypto/x509. It is for tests only.
package keystest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// PGPSpec describes an OpenPGP key; the zero value is a good Ed25519
// key with a Curve25519 encryption subkey, created an hour ago, that
// does not expire.
type PGPSpec struct {
	// Created is the key's creation time (default an hour ago).
	Created time.Time
	// Lifetime, when set, makes the key expire this long after Created.
	Lifetime time.Duration
	// Revoked adds a key revocation signature.
	Revoked bool
	// SignOnly drops the encryption subkey.
	SignOnly bool
	// RSABits, when set, makes an RSA key of that size instead.
	RSABits int
	// CannotSign makes the primary key certify-only, so that (with the
	// encryption subkey) nothing can sign.
	CannotSign bool
	// ForeignSecret replaces the primary secret key with another key's,
	// so the secret material does not match the public key.
	ForeignSecret bool
	// Passphrase, when set, protects the secret keys (ArmorPrivate
	// then writes them protected).
	Passphrase string
}

// PGPEntity makes a key for address.
func PGPEntity(t testing.TB, address string, s PGPSpec) *openpgp.Entity {
	t.Helper()
	created := s.Created
	if created.IsZero() {
		created = time.Now().Add(-time.Hour)
	}
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created },
		KeyLifetimeSecs: uint32(s.Lifetime / time.Second)}
	if s.RSABits > 0 {
		cfg.Algorithm, cfg.RSABits = packet.PubKeyAlgoRSA, s.RSABits
	}
	e, err := openpgp.NewEntity("Test Person", "", address, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.SignOnly {
		e.Subkeys = nil
	}
	if s.Revoked {
		if err := e.RevokeKey(packet.KeyCompromised, "test", cfg); err != nil {
			t.Fatal(err)
		}
	}
	if s.CannotSign {
		for _, id := range e.Identities {
			id.SelfSignature.FlagSign = false
			if err := id.SelfSignature.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.ForeignSecret {
		other := PGPEntity(t, address, PGPSpec{Created: created, RSABits: s.RSABits})
		swapped := *other.PrivateKey
		swapped.PublicKey = *e.PrimaryKey
		e.PrivateKey = &swapped
	}
	if s.Passphrase != "" {
		if err := e.EncryptPrivateKeys([]byte(s.Passphrase), nil); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// PGP returns the armored public key of a key made by PGPEntity.
func PGP(t testing.TB, address string, s PGPSpec) []byte {
	t.Helper()
	return ArmorPublic(t, PGPEntity(t, address, s))
}

// ArmorPublic armors e's public key (RFC 9580 §6.2).
func ArmorPublic(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ArmorPrivate armors e's private key.
func ArmorPrivate(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// RSA keys are slow to make: tests share two.
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

// RSAKey returns shared RSA-2048 key i (0 or 1).
func RSAKey(i int) *rsa.PrivateKey { return rsaKeys()[i] }

var serial atomic.Int64

// CA is a certificate authority of the test PKI.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed root valid from two days ago for a year.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000 + serial.Add(1)),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Sealpost Test PKI"}},
		NotBefore:             now.Add(-48 * time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: c, Key: key}
}

// Pool returns a pool holding only the CA.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// Leaf describes an end-entity certificate; zero fields give a good
// S/MIME certificate for encryption and signing, valid from a day ago
// for 90 days, with RSAKey(0).
type Leaf struct {
	Emails      []string
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	NotBefore   time.Time
	NotAfter    time.Time
	Key         crypto.Signer
}

// Issue signs a leaf certificate.
func (c *CA) Issue(t testing.TB, l Leaf) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	now := time.Now()
	if l.Key == nil {
		l.Key = RSAKey(0)
	}
	if l.KeyUsage == 0 {
		l.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	if l.ExtKeyUsage == nil {
		l.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = now.Add(-24 * time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(1000 + serial.Add(1)),
		Subject:        pkix.Name{CommonName: "Test Mailbox"},
		EmailAddresses: l.Emails,
		NotBefore:      l.NotBefore,
		NotAfter:       l.NotAfter,
		KeyUsage:       l.KeyUsage,
		ExtKeyUsage:    l.ExtKeyUsage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, l.Key.Public(), c.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, l.Key
}

// CRL returns a current CRL from c listing certs.
func (c *CA) CRL(t testing.TB, certs ...*x509.Certificate) *x509.RevocationList {
	t.Helper()
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, cert := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: now.Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(serial.Add(1)), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, c.Cert, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// CertPEM encodes certificates as PEM, in order.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// CRLPEM encodes a CRL as PEM.
func CRLPEM(crl *x509.RevocationList) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw})
}

// KeyPEM encodes a private key as unencrypted PKCS #8 PEM.
func KeyPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Package smime validates S/MIME certificates (RFC 8550) for a recipient
// or sender address against configured trust anchors, and signs and
// encrypts complete RFC 5322 messages as S/MIME 4.0 (RFC 8551):
// multipart/signed with a detached signature, and enveloped-data with
// AES-256-CBC, signing first when a sender certificate is given. Choosing
// who gets S/MIME is package secureline's job; storing certificates and
// sealed keys is the key management API's. Revocation by CRL is checked
// when the caller supplies CRLs; OCSP and fetching CRLs are out of scope.
package smime

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors callers branch on (the HTTP layer maps each to a problem type).
// Messages name the rule, never certificate contents.
var (
	ErrMalformedCert     = errors.New("smime: malformed certificate")
	ErrCertExpired       = errors.New("smime: certificate expired or not yet valid")
	ErrKeyUsage          = errors.New("smime: certificate key usage does not allow this use")
	ErrNoEmailProtection = errors.New("smime: certificate lacks the emailProtection extended key usage")
	ErrAddressMismatch   = errors.New("smime: certificate is not for the address")
	ErrUntrusted         = errors.New("smime: certificate does not chain to a trust anchor")
	ErrRevoked           = errors.New("smime: certificate revoked")
	ErrUnsupportedKey    = errors.New("smime: certificate key type or size is not supported")
	ErrKeyMismatch       = errors.New("smime: private key does not match the certificate")
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Usage is what a certificate is validated for.
type Usage int

const (
	// Encryption: the recipient's key wraps the content-encryption key.
	Encryption Usage = iota
	// Signing: the sender's key signs the message.
	Signing
)

// Policy is what certificates are validated against.
type Policy struct {
	// Roots are the trust anchors; nil means none (every chain fails).
	Roots *x509.CertPool
	// CRLs are revocation lists to consult (RFC 5280 §6.3), each checked
	// against its issuer; a list whose issuer is not in the chain is
	// ignored. Nil means no revocation check.
	CRLs []*x509.RevocationList
}

// ParseCertificates reads PEM ("CERTIFICATE" blocks) or a single DER
// certificate. The first is the end-entity certificate; the rest are
// offered as intermediates.
func ParseCertificates(data []byte) (leaf *x509.Certificate, intermediates []*x509.Certificate, err error) {
	var certs []*x509.Certificate
	if bytes.Contains(data, []byte("-----BEGIN")) {
		rest := data
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				return nil, nil, fmt.Errorf("%w: PEM block %q is not a certificate", ErrMalformedCert, block.Type)
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: unparsable certificate", ErrMalformedCert)
			}
			certs = append(certs, c)
		}
	} else if c, err := x509.ParseCertificate(data); err == nil {
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("%w: no certificate found", ErrMalformedCert)
	}
	return certs[0], certs[1:], nil
}

// Validate checks cert for usage by address at now: inside its validity
// period, the key usage the use needs, the emailProtection extended key
// usage, the address in the certificate, a supported key, a chain to one
// of policy.Roots through intermediates, and not revoked by a given CRL.
// It returns the verified chain, leaf first.
func Validate(cert *x509.Certificate, intermediates []*x509.Certificate, address string, usage Usage, policy Policy, now time.Time) ([]*x509.Certificate, error) {
	if cert == nil {
		return nil, ErrMalformedCert
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, ErrCertExpired
	}
	if err := checkKeyUsage(cert, usage); err != nil {
		return nil, err
	}
	if err := checkExtKeyUsage(cert); err != nil {
		return nil, err
	}
	if !hasAddress(cert, address) {
		return nil, ErrAddressMismatch
	}
	if err := checkKey(cert.PublicKey, usage); err != nil {
		return nil, err
	}
	chain, err := verifyChain(cert, intermediates, policy.Roots, now)
	if err != nil {
		return nil, err
	}
	if err := checkRevocation(chain, policy.CRLs, now); err != nil {
		return nil, err
	}
	return chain, nil
}

// checkKeyUsage: RFC 8550 §4.4.2. We require the extension (the CA/B
// Forum S/MIME Baseline Requirements do too) and, for encryption,
// keyEncipherment for RSA keys or keyAgreement for EC keys; for signing,
// digitalSignature or nonRepudiation.
func checkKeyUsage(cert *x509.Certificate, usage Usage) error {
	ku := cert.KeyUsage
	if ku == 0 {
		return fmt.Errorf("%w: no key usage extension", ErrKeyUsage)
	}
	switch usage {
	case Encryption:
		if _, isRSA := cert.PublicKey.(*rsa.PublicKey); isRSA {
			if ku&x509.KeyUsageKeyEncipherment == 0 {
				return fmt.Errorf("%w: keyEncipherment missing", ErrKeyUsage)
			}
		} else if ku&x509.KeyUsageKeyAgreement == 0 {
			return fmt.Errorf("%w: keyAgreement missing", ErrKeyUsage)
		}
	case Signing:
		if ku&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
			return fmt.Errorf("%w: digitalSignature missing", ErrKeyUsage)
		}
	}
	return nil
}

// checkExtKeyUsage: RFC 8550 §4.4.4 allows a certificate without the
// extension; we require id-kp-emailProtection explicitly, as the S/MIME
// Baseline Requirements do, so a TLS server certificate is never taken
// for a mailbox.
func checkExtKeyUsage(cert *x509.Certificate) error {
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageEmailProtection {
			return nil
		}
	}
	return ErrNoEmailProtection
}

// oidEmailAddress is PKCS #9 emailAddress, the legacy subject attribute.
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// hasAddress: RFC 8550 §3: the address is in a subjectAltName rfc822Name
// or, in older certificates, the subject's emailAddress attribute.
// Compared case-insensitively.
func hasAddress(cert *x509.Certificate, address string) bool {
	want := strings.TrimSpace(address)
	if want == "" {
		return false
	}
	for _, a := range cert.EmailAddresses {
		if strings.EqualFold(a, want) {
			return true
		}
	}
	for _, n := range cert.Subject.Names {
		if n.Type.Equal(oidEmailAddress) {
			if s, ok := n.Value.(string); ok && strings.EqualFold(s, want) {
				return true
			}
		}
	}
	return false
}

// checkKey: encryption needs RSA (key transport, RFC 8551 §2.3; the
// library has no ECDH key agreement), at least MinRSABits; signing takes
// RSA and ECDSA P-256 and up (the library cannot sign with Ed25519).
func checkKey(pub any, usage Usage) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("%w: %d-bit RSA", ErrUnsupportedKey, k.N.BitLen())
		}
		return nil
	case *ecdsa.PublicKey:
		if usage == Signing && k.Curve.Params().BitSize >= 256 {
			return nil
		}
	}
	return ErrUnsupportedKey
}

func verifyChain(cert *x509.Certificate, intermediates []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	if roots == nil {
		return nil, fmt.Errorf("%w: no trust anchors configured", ErrUntrusted)
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: pool,
		CurrentTime:   now,
		// RFC 8550 §4.4.4: every certificate in the path must allow email
		// protection if it restricts extended key usage.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: a certificate in the chain is outside its validity period", ErrCertExpired)
		}
		return nil, ErrUntrusted
	}
	return chains[0], nil
}

// checkRevocation looks each certificate up in the CRLs its issuer
// signed that are current at now (RFC 5280 §6.3.3, without delta CRLs
// or distribution-point scoping).
func checkRevocation(chain []*x509.Certificate, crls []*x509.RevocationList, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		subject, issuer := chain[i], chain[i+1]
		for _, crl := range crls {
			if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) || crl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
				continue
			}
			for _, e := range crl.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(subject.SerialNumber) == 0 {
					return ErrRevoked
				}
			}
		}
	}
	return nil
}

// matchesKey reports whether key is the private half of cert's key.
func matchesKey(cert *x509.Certificate, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	return ok && pub.Equal(cert.PublicKey)
}

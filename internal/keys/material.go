package keys

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/sealpost/sealpost/internal/smime"
)

// parseChain reads an uploaded certificate chain (PEM, leaf first, or
// one DER certificate) and returns it re-encoded as clean PEM, which is
// what is stored.
func parseChain(field string, data []byte) (*x509.Certificate, []*x509.Certificate, string, error) {
	if len(data) > MaxMaterialBytes {
		return nil, nil, "", &ValidationError{Field: field, Cause: CauseMalformed,
			Message: fmt.Sprintf("larger than %d bytes", MaxMaterialBytes)}
	}
	leaf, inter, err := smime.ParseCertificates(data)
	if err != nil {
		return nil, nil, "", refusal(field, err)
	}
	if len(inter)+1 > MaxChain {
		return nil, nil, "", &ValidationError{Field: field, Cause: CauseMalformed,
			Message: fmt.Sprintf("the chain holds %d certificates, at most %d are accepted", len(inter)+1, MaxChain)}
	}
	var b strings.Builder
	for _, c := range append([]*x509.Certificate{leaf}, inter...) {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return leaf, inter, b.String(), nil
}

// certFingerprint is the SHA-256 of the certificate's DER, upper-case
// hex (the form openssl x509 -fingerprint -sha256 shows, without colons).
func certFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// parsePrivateKey reads one unencrypted PEM private key: PKCS #8
// ("PRIVATE KEY", RFC 5958), or the older PKCS #1 ("RSA PRIVATE KEY")
// and SEC 1 ("EC PRIVATE KEY") forms. It returns the key and its PKCS #8
// DER, which is what gets sealed. Errors never quote the input.
func parsePrivateKey(field string, data []byte) (crypto.Signer, []byte, error) {
	bad := func(msg string) (crypto.Signer, []byte, error) {
		return nil, nil, &ValidationError{Field: field, Cause: CauseMalformed, Message: msg}
	}
	if len(data) > MaxMaterialBytes {
		return bad(fmt.Sprintf("larger than %d bytes", MaxMaterialBytes))
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return bad("not a PEM private key (-----BEGIN PRIVATE KEY-----)")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return bad("holds more than one PEM block; give the private key alone")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return bad("the private key is encrypted; upload it unencrypted over this TLS connection " +
			"(openssl pkcs8 -topk8 -nocrypt -in key.pem), it is sealed at rest")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return bad("PEM block is not a private key")
	}
	if err != nil {
		return bad("the private key does not parse")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return bad("unsupported private key type")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return bad("unsupported private key type")
	}
	return signer, der, nil
}

// openPrivateKey parses a sealed-and-opened PKCS #8 key.
func openPrivateKey(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse stored private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("stored private key is not a signer")
	}
	return signer, nil
}

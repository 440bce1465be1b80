package smime

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/sealpost/sealpost/internal/headerprotect"
)

// Errors of the message operations.
var (
	ErrNoRecipients = errors.New("smime: no recipient certificates")
	ErrNoSigner     = errors.New("smime: no signer")
	// ErrNot7Bit: a clear-signed message must survive any transport
	// untouched (RFC 8551 §3.1.2), so its content must already be 7-bit
	// with lines of at most 998 octets.
	ErrNot7Bit = errors.New("smime: content to clear-sign is not 7-bit")
)

// Recipient is a certificate that passed Validate for encryption.
type Recipient struct {
	Cert  *x509.Certificate
	Chain []*x509.Certificate
}

// NewRecipient validates cert for encryption to address.
func NewRecipient(cert *x509.Certificate, intermediates []*x509.Certificate, address string, policy Policy, now time.Time) (*Recipient, error) {
	chain, err := Validate(cert, intermediates, address, Encryption, policy, now)
	if err != nil {
		return nil, err
	}
	return &Recipient{Cert: cert, Chain: chain}, nil
}

// Signer is a sender certificate and its private key that passed
// Validate for signing.
type Signer struct {
	Cert *x509.Certificate
	// Intermediates are included in each signature so receivers can
	// build the path to their trust anchor without fetching anything.
	Intermediates []*x509.Certificate
	key           crypto.Signer
}

// NewSigner validates cert for signing as address and checks that key
// is its private key.
func NewSigner(cert *x509.Certificate, intermediates []*x509.Certificate, key crypto.Signer, address string, policy Policy, now time.Time) (*Signer, error) {
	chain, err := Validate(cert, intermediates, address, Signing, policy, now)
	if err != nil {
		return nil, err
	}
	if key == nil || !matchesKey(cert, key) {
		return nil, ErrKeyMismatch
	}
	// Carry the path below the anchor, not the anchor itself.
	var inter []*x509.Certificate
	if len(chain) > 2 {
		inter = chain[1 : len(chain)-1]
	}
	return &Signer{Cert: cert, Intermediates: inter, key: key}, nil
}

// KeyTransport is how the content-encryption key is wrapped for an RSA
// recipient (RFC 8551 §2.3).
type KeyTransport int

const (
	// RSAPKCS1v15 is rsaEncryption, the algorithm every S/MIME client
	// reads (a MUST for receivers in RFC 8551 §2.3); the default.
	RSAPKCS1v15 KeyTransport = iota
	// RSAOAEP is RSAES-OAEP (RFC 8017, RFC 3560) with the RFC 4055
	// default SHA-1 parameters, which RFC 8551 ranks SHOULD+; older
	// clients may not read it.
	RSAOAEP
)

// Options tune Encrypt and Sign. The zero value is ready to use.
type Options struct {
	// Subject is the outer, neutral Subject of encrypted messages; ""
	// means headerprotect.DefaultSubject.
	Subject string
	// KeyTransport picks the RSA key wrapping; the zero value is
	// RSAPKCS1v15.
	KeyTransport KeyTransport
	// Rand is used for MIME boundaries; nil means crypto/rand. (The
	// library draws content keys and IVs from crypto/rand itself.)
	Rand io.Reader
}

// Encrypt turns the complete RFC 5322 message msg into an S/MIME
// enveloped-data message (RFC 8551 §3.3) for every recipient, with
// AES-256-CBC content encryption. With a signer the protected entity is
// first signed as multipart/signed (RFC 8551 §3.5.3) and that is
// encrypted (sign-then-encrypt, §3.6). The outer header keeps only
// routing fields and a neutral Subject (package headerprotect).
func Encrypt(msg []byte, to []*Recipient, signer *Signer, opts Options) ([]byte, error) {
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	p, err := headerprotect.Protect(msg, opts.Subject)
	if err != nil {
		return nil, err
	}
	content := p.Inner
	if signer != nil {
		content, err = signedEntity(p.Inner, signer, opts)
		if err != nil {
			return nil, err
		}
	}
	certs := make([]*x509.Certificate, len(to))
	for i, r := range to {
		if r == nil || r.Cert == nil {
			return nil, ErrNoRecipients
		}
		certs[i] = r.Cert
	}
	der, err := envelope(content, certs, opts.KeyTransport)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(der)*4/3 + len(der)/38 + 1024)
	p.WriteOuter(&out,
		`Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"`,
		"Content-Transfer-Encoding: base64",
		`Content-Disposition: attachment; filename="smime.p7m"`,
	)
	writeBase64(&out, der)
	return out.Bytes(), nil
}

// envelopeMu guards the pkcs7 package's algorithm variables, which its
// Encrypt reads: this package is the only one in Sealpost that may set
// them or call pkcs7.Encrypt.
var envelopeMu sync.Mutex

// envelope builds the CMS EnvelopedData (RFC 5652 §6) with AES-256-CBC
// (RFC 3565): every S/MIME client and openssl cms read it. AES-GCM
// belongs in AuthEnvelopedData (RFC 5083, RFC 5084), which many clients
// still cannot read and which the library does not write (its GCM mode
// emits plain EnvelopedData).
func envelope(content []byte, certs []*x509.Certificate, kt KeyTransport) ([]byte, error) {
	envelopeMu.Lock()
	defer envelopeMu.Unlock()
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC
	switch kt {
	case RSAOAEP:
		// SHA-1, not SHA-256: with SHA-256 the library hashes MGF1 with
		// SHA-256 but encodes only hashFunc, so receivers apply the RFC
		// 4055 §4.1 default MGF1-SHA1 and fail. With SHA-1 the encoding
		// and the computation agree; OAEP's security does not rest on
		// SHA-1's collision resistance.
		pkcs7.KeyEncryptionAlgorithm = pkcs7.OIDEncryptionAlgorithmRSAESOAEP
		pkcs7.KeyEncryptionHash = crypto.SHA1
	default:
		pkcs7.KeyEncryptionAlgorithm = pkcs7.OIDEncryptionAlgorithmRSA
		pkcs7.KeyEncryptionHash = crypto.SHA256
	}
	der, err := pkcs7.Encrypt(content, certs)
	if err != nil {
		return nil, fmt.Errorf("smime: envelope: %w", err)
	}
	return der, nil
}

// Sign clear-signs msg without encrypting it: the content fields and
// body become the first part of a multipart/signed (RFC 8551 §3.5.3),
// every other field stays on the outer header. The content must be
// 7-bit (ErrNot7Bit).
func Sign(msg []byte, signer *Signer, opts Options) ([]byte, error) {
	if signer == nil {
		return nil, ErrNoSigner
	}
	m, err := headerprotect.Parse(msg)
	if err != nil {
		return nil, err
	}
	var outer, entity bytes.Buffer
	hasType := false
	for _, f := range m.Header {
		name := strings.ToLower(f.Name)
		switch {
		case name == "bcc" || name == "dkim-signature":
			// Bcc is never shown; a DKIM signature would no longer verify.
		case strings.HasPrefix(name, "content-"):
			hasType = hasType || name == "content-type"
			entity.Write(f.Raw)
		case name == "mime-version":
		default:
			outer.Write(f.Raw)
		}
	}
	if !hasType {
		entity.WriteString("Content-Type: text/plain; charset=us-ascii\r\n")
	}
	entity.WriteString("\r\n")
	entity.Write(m.Body)
	if !is7Bit(entity.Bytes()) {
		return nil, ErrNot7Bit
	}
	signed, err := signedEntity(entity.Bytes(), signer, opts)
	if err != nil {
		return nil, err
	}
	outer.WriteString("MIME-Version: 1.0\r\n")
	outer.Write(signed)
	return outer.Bytes(), nil
}

// signedEntity returns a multipart/signed entity (its Content-Type
// field, an empty line, the parts) signing entity with a detached
// SHA-256 CMS signature. The first part is entity byte for byte, CRLF
// canonical (RFC 8551 §3.1.1), which is exactly what is signed.
func signedEntity(entity []byte, signer *Signer, opts Options) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(entity)
	if err != nil {
		return nil, fmt.Errorf("smime: sign: %w", err)
	}
	// RFC 8551 §2.1: SHA-256 is a MUST for sending agents.
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if len(signer.Intermediates) > 0 {
		err = sd.AddSignerChain(signer.Cert, signer.key, signer.Intermediates, pkcs7.SignerInfoConfig{})
	} else {
		err = sd.AddSigner(signer.Cert, signer.key, pkcs7.SignerInfoConfig{})
	}
	if err != nil {
		return nil, fmt.Errorf("smime: sign: %w", err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("smime: sign: %w", err)
	}
	boundary, err := newBoundary(opts.Rand)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(entity) + len(der)*2 + 512)
	b.WriteString(`Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;` + "\r\n")
	b.WriteString(` boundary="` + boundary + `"` + "\r\n\r\n")
	b.WriteString("This is an S/MIME signed message (RFC 8551).\r\n")
	b.WriteString("--" + boundary + "\r\n")
	b.Write(entity)
	// RFC 2046 §5.1.1: the CRLF before a delimiter belongs to it, so the
	// signed bytes end exactly where entity ends.
	b.WriteString("\r\n")
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString(`Content-Type: application/pkcs7-signature; name="smime.p7s"` + "\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString(`Content-Disposition: attachment; filename="smime.p7s"` + "\r\n\r\n")
	writeBase64(&b, der)
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// writeBase64 writes data in base64 lines of 76 characters (RFC 2045
// §6.8), each ending in CRLF.
func writeBase64(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	if enc != "" {
		b.WriteString(enc)
		b.WriteString("\r\n")
	}
}

// is7Bit: RFC 5322 §2.1.1 and RFC 2045 §2.7: US-ASCII without NUL, lines
// of at most 998 octets.
func is7Bit(b []byte) bool {
	line := 0
	for _, c := range b {
		switch {
		case c == 0 || c > 127:
			return false
		case c == '\n':
			line = 0
		default:
			line++
			if line > 999 { // 998 octets plus the CR
				return false
			}
		}
	}
	return true
}

// newBoundary returns a multipart boundary (RFC 2046 §5.1.1) that cannot
// occur in base64 text.
func newBoundary(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [18]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("smime: boundary: %w", err)
	}
	return "=_sealpost_" + hex.EncodeToString(b[:]), nil
}

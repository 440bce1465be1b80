package pgpmime

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/internal/headerprotect"
)

// ErrNoRecipients is returned by Encrypt without a recipient key.
var ErrNoRecipients = errors.New("pgpmime: no recipient keys")

// Options tune Encrypt. The zero value is ready to use.
type Options struct {
	// Subject is the outer, neutral Subject; "" means
	// headerprotect.DefaultSubject. The real subject stays inside.
	Subject string
	// Now is the time keys are checked against and signatures carry;
	// nil means time.Now.
	Now func() time.Time
	// Rand is the randomness source (session keys, boundary); nil means
	// crypto/rand.
	Rand io.Reader
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) rand() io.Reader {
	if o.Rand != nil {
		return o.Rand
	}
	return rand.Reader
}

// Encrypt turns the complete RFC 5322 message msg into a PGP/MIME
// message (RFC 3156 §4) encrypted to every key in to, and signed by
// signer when it is not nil, in the combined form of RFC 3156 §6.2 (one
// OpenPGP message that is both signed and encrypted). The outer header
// keeps only routing fields and a neutral Subject (package
// headerprotect); the encrypted entity keeps every original field.
func Encrypt(msg []byte, to []*PublicKey, signer *SigningKey, opts Options) ([]byte, error) {
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	p, err := headerprotect.Protect(msg, opts.Subject)
	if err != nil {
		return nil, err
	}
	armored, err := encryptEntity(p.Inner, to, signer, opts)
	if err != nil {
		return nil, err
	}
	boundary, err := newBoundary(opts.rand())
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(armored) + 1024)
	// RFC 3156 §4: multipart/encrypted with the protocol parameter, a
	// version part first, then the OpenPGP message as octet-stream.
	p.WriteOuter(&out,
		`Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";`,
		` boundary="`+boundary+`"`,
	)
	out.WriteString("This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n")
	out.WriteString("--" + boundary + "\r\n")
	out.WriteString("Content-Type: application/pgp-encrypted\r\n")
	out.WriteString("Content-Description: PGP/MIME version identification\r\n\r\n")
	out.WriteString("Version: 1\r\n\r\n")
	out.WriteString("--" + boundary + "\r\n")
	out.WriteString(`Content-Type: application/octet-stream; name="encrypted.asc"` + "\r\n")
	out.WriteString("Content-Description: OpenPGP encrypted message\r\n")
	out.WriteString(`Content-Disposition: inline; filename="encrypted.asc"` + "\r\n\r\n")
	out.Write(armored)
	out.WriteString("\r\n--" + boundary + "--\r\n")
	return out.Bytes(), nil
}

// config is the OpenPGP configuration for every message: AES-256 when the
// recipients' preferences allow it (RFC 9580 Preferred Symmetric Ciphers subpacket; go-crypto falls
// back to AES-128, the mandatory cipher, otherwise), SHA-256 signatures,
// no compression (short messages gain little, and compressing secrets
// next to attacker-chosen text leaks length), and SEIPD v1 with MDC
// rather than v2/AEAD, which GnuPG 2.2 and many clients cannot read.
func config(opts Options) *packet.Config {
	now := opts.now()
	return &packet.Config{
		Rand:                   opts.rand(),
		DefaultCipher:          packet.CipherAES256,
		DefaultHash:            crypto.SHA256,
		DefaultCompressionAlgo: packet.CompressionNone,
		Time:                   func() time.Time { return now },
	}
}

// encryptEntity returns the ASCII-armored OpenPGP message (RFC 9580
// §6.2) holding entity as binary literal data; entity is already in
// canonical CRLF form, which is what RFC 3156 §6.2 signs.
func encryptEntity(entity []byte, to []*PublicKey, signer *SigningKey, opts Options) ([]byte, error) {
	now := opts.now()
	recipients := make([]*openpgp.Entity, len(to))
	for i, k := range to {
		if k == nil || k.entity == nil {
			return nil, ErrNoRecipients
		}
		// A key accepted at upload may have expired or been superseded
		// since: check it again at send time.
		if err := checkEntity(k.entity, k.Address, now); err != nil {
			return nil, err
		}
		if _, ok := k.entity.EncryptionKey(now); !ok {
			return nil, subkeyFailure(k.entity, now, packet.KeyFlagEncryptCommunications)
		}
		recipients[i] = k.entity
	}
	var signed *openpgp.Entity
	if signer != nil {
		signed = signer.entity
	}
	var buf bytes.Buffer
	buf.Grow(len(entity)*4/3 + 1024)
	aw, err := armor.Encode(&buf, "PGP MESSAGE", nil)
	if err != nil {
		return nil, fmt.Errorf("pgpmime: armor: %w", err)
	}
	hints := &openpgp.FileHints{IsBinary: true}
	w, err := openpgp.Encrypt(aw, recipients, signed, hints, config(opts))
	if err != nil {
		return nil, fmt.Errorf("pgpmime: encrypt: %w", err)
	}
	if _, err := w.Write(entity); err != nil {
		return nil, fmt.Errorf("pgpmime: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("pgpmime: encrypt: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("pgpmime: armor: %w", err)
	}
	// go-crypto armors with LF line ends; mail wants CRLF.
	return headerprotect.CRLF(buf.Bytes()), nil
}

// newBoundary returns a multipart boundary (RFC 2046 §5.1.1) that cannot
// occur in base64 or armored text.
func newBoundary(r io.Reader) (string, error) {
	var b [18]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("pgpmime: boundary: %w", err)
	}
	return "=_sealpost_" + hex.EncodeToString(b[:]), nil
}

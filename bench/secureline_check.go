package bench

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-message"
	"github.com/smallstep/pkcs7"
)

// lineKind is what a variant's recipients must receive.
type lineKind string

const (
	kindTLS         lineKind = "tls"          // the message as composed, over TLS
	kindPGP         lineKind = "pgp"          // PGP/MIME, RFC 3156 §4
	kindSMIME       lineKind = "smime"        // S/MIME enveloped-data, RFC 8551 §3.3
	kindSMIMESigned lineKind = "smime-signed" // the same around a multipart/signed, RFC 8551 §3.6
	kindPortal      lineKind = "portal"       // the portal's link notice, no content
)

// oidEnvelopedData is CMS EnvelopedData (RFC 5652 §6.1).
var oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}

// checkShape is the sink's check of every message, cheap enough to run
// inline: the container is the one the variant claims, and nothing of
// the content (the body's marker, the real subject, the attachment's
// name) is readable outside an encryption or in a portal notice.
func checkShape(kind lineKind, raw []byte) error {
	e, err := readEntity(raw)
	if err != nil {
		return err
	}
	mt, params, _ := e.Header.ContentType()
	if kind != kindTLS {
		if err := noClearContent(raw); err != nil {
			return err
		}
	}
	switch kind {
	case kindTLS:
		return checkPlain(e, mt)
	case kindPortal:
		return checkNotice(e, mt)
	case kindPGP:
		return checkPGPShape(e, mt, params)
	case kindSMIME, kindSMIMESigned:
		return checkSMIMEShape(e, mt, params)
	}
	return fmt.Errorf("unknown variant kind %q", kind)
}

// noClearContent refuses a message whose raw text shows the content.
func noClearContent(raw []byte) error {
	for _, s := range []string{lineMarker, lineSubject, lineAttachmentName} {
		if bytes.Contains(raw, []byte(s)) {
			return fmt.Errorf("the content (%q) is readable in the message as sent", s)
		}
	}
	return nil
}

func readEntity(raw []byte) (*message.Entity, error) {
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, fmt.Errorf("not a MIME message: %w", err)
	}
	return e, nil
}

func isEncryptedType(mt string) bool {
	return mt == "multipart/encrypted" || mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime"
}

// checkPlain: the baseline's recipients get the message as composed:
// its subject, and the body among its decoded parts.
func checkPlain(e *message.Entity, mt string) error {
	if isEncryptedType(mt) {
		return fmt.Errorf("arrived as %s, want the message as composed", mt)
	}
	if s := e.Header.Get("Subject"); s != lineSubject {
		return fmt.Errorf("subject %q, want the message's", s)
	}
	text, err := decodedText(e)
	if err != nil {
		return err
	}
	if !strings.Contains(text, lineMarker) {
		return errors.New("the body is not in the message")
	}
	return nil
}

// checkNotice: a portal recipient gets the link notice, naming the
// organisation only (docs/portal.md, "Notice").
func checkNotice(e *message.Entity, mt string) error {
	if isEncryptedType(mt) {
		return fmt.Errorf("the notice arrived as %s", mt)
	}
	if s := e.Header.Get("Subject"); !strings.HasPrefix(s, "You have a secure message") {
		return fmt.Errorf("subject %q is not the portal's notice", s)
	}
	text, err := decodedText(e)
	if err != nil {
		return err
	}
	if strings.Contains(text, lineMarker) || strings.Contains(text, lineSubject) || strings.Contains(text, lineAttachmentName) {
		return errors.New("the notice carries the message's content")
	}
	if !strings.Contains(text, linePublicURL+"/p/") {
		return errors.New("the notice has no portal link")
	}
	return nil
}

// checkPGPShape: multipart/encrypted with protocol
// application/pgp-encrypted, a "Version: 1" control part and an armored
// OpenPGP message that opens with a public-key encrypted session key
// packet (RFC 3156 §4, RFC 9580 §5.1).
func checkPGPShape(e *message.Entity, mt string, params map[string]string) error {
	if mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" {
		return fmt.Errorf("Content-Type %s (protocol %q), want multipart/encrypted; protocol=application/pgp-encrypted", mt, params["protocol"])
	}
	parts, err := readParts(e)
	if err != nil {
		return err
	}
	if len(parts) != 2 || parts[0].mt != "application/pgp-encrypted" || parts[1].mt != "application/octet-stream" {
		return fmt.Errorf("parts %v, want application/pgp-encrypted and application/octet-stream", partTypes(parts))
	}
	if !bytes.Contains(parts[0].body, []byte("Version: 1")) {
		return errors.New("the control part lacks Version: 1")
	}
	block, err := armor.Decode(bytes.NewReader(parts[1].body))
	if err != nil || block.Type != "PGP MESSAGE" {
		return fmt.Errorf("the data part is not an armored PGP MESSAGE: %v", err)
	}
	p, err := packet.NewReader(block.Body).Next()
	if err != nil {
		return fmt.Errorf("the OpenPGP message: %w", err)
	}
	if _, ok := p.(*packet.EncryptedKey); !ok {
		return fmt.Errorf("the OpenPGP message opens with %T, want an encrypted session key", p)
	}
	return nil
}

// checkSMIMEShape: application/pkcs7-mime; smime-type=enveloped-data
// whose body is a CMS ContentInfo of type EnvelopedData (RFC 8551 §3.3).
func checkSMIMEShape(e *message.Entity, mt string, params map[string]string) error {
	if mt != "application/pkcs7-mime" || !strings.EqualFold(params["smime-type"], "enveloped-data") {
		return fmt.Errorf("Content-Type %s (smime-type %q), want application/pkcs7-mime; smime-type=enveloped-data", mt, params["smime-type"])
	}
	der, err := io.ReadAll(e.Body)
	if err != nil {
		return fmt.Errorf("the S/MIME body: %w", err)
	}
	var info struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return fmt.Errorf("the S/MIME body is not a CMS ContentInfo: %w", err)
	}
	if !info.ContentType.Equal(oidEnvelopedData) {
		return fmt.Errorf("CMS content type %v, want enveloped-data", info.ContentType)
	}
	return nil
}

// lineKeyring is what the sink needs to open a sampled message: the
// recipient's PGP key or S/MIME certificate and key, and the CA a sender
// signature must chain to.
type lineKeyring interface {
	pgpEntity(address string) *openpgp.Entity
	smimeRecipient(address string) (*x509.Certificate, any)
	roots() *x509.CertPool
}

// checkOpens decrypts a sampled message with the recipient's key and
// requires the protected entity to carry the real subject and the body
// (RFC 9788: the header fields travel inside); an S/MIME message of the
// signed variant must hold a signature that verifies to the test CA.
func checkOpens(kind lineKind, raw []byte, address string, keys lineKeyring) error {
	e, err := readEntity(raw)
	if err != nil {
		return err
	}
	var inner []byte
	switch kind {
	case kindPGP:
		inner, err = openPGP(e, keys.pgpEntity(address))
	case kindSMIME, kindSMIMESigned:
		inner, err = openSMIME(e, kind == kindSMIMESigned, address, keys)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	ie, err := readEntity(inner)
	if err != nil {
		return fmt.Errorf("the decrypted entity: %w", err)
	}
	if s := ie.Header.Get("Subject"); s != lineSubject {
		return fmt.Errorf("the decrypted entity's subject is %q, want the message's", s)
	}
	text, err := decodedText(ie)
	if err != nil {
		return err
	}
	if !strings.Contains(text, lineMarker) {
		return errors.New("the decrypted entity lacks the body")
	}
	return nil
}

func openPGP(e *message.Entity, key *openpgp.Entity) ([]byte, error) {
	if key == nil {
		return nil, errors.New("no PGP key for the recipient")
	}
	parts, err := readParts(e)
	if err != nil || len(parts) != 2 {
		return nil, fmt.Errorf("PGP/MIME parts: %d, %v", len(parts), err)
	}
	block, err := armor.Decode(bytes.NewReader(parts[1].body))
	if err != nil {
		return nil, err
	}
	md, err := openpgp.ReadMessage(block.Body, openpgp.EntityList{key}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt PGP: %w", err)
	}
	if !md.IsEncrypted {
		return nil, errors.New("the PGP message is not encrypted")
	}
	return io.ReadAll(md.UnverifiedBody)
}

func openSMIME(e *message.Entity, signed bool, address string, keys lineKeyring) ([]byte, error) {
	cert, key := keys.smimeRecipient(address)
	if cert == nil {
		return nil, errors.New("no S/MIME certificate for the recipient")
	}
	der, err := io.ReadAll(e.Body)
	if err != nil {
		return nil, err
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("parse CMS: %w", err)
	}
	content, err := p7.Decrypt(cert, key)
	if err != nil {
		return nil, fmt.Errorf("decrypt S/MIME: %w", err)
	}
	if !signed {
		return content, nil
	}
	return verifySignedEntity(content, keys.roots())
}

// verifySignedEntity checks a multipart/signed entity's detached CMS
// signature over its first part (RFC 8551 §3.5.3; the signed bytes are
// those between the first delimiter line and the CRLF before the next,
// RFC 1847 §2.1) and returns that part.
func verifySignedEntity(entity []byte, roots *x509.CertPool) ([]byte, error) {
	e, err := readEntity(entity)
	if err != nil {
		return nil, err
	}
	mt, params, _ := e.Header.ContentType()
	if mt != "multipart/signed" || params["protocol"] != "application/pkcs7-signature" {
		return nil, fmt.Errorf("the decrypted entity is %s (protocol %q), want multipart/signed with a CMS signature", mt, params["protocol"])
	}
	_, body, _ := bytes.Cut(entity, []byte("\r\n\r\n"))
	_, rest, ok := bytes.Cut(body, []byte("--"+params["boundary"]+"\r\n"))
	signed, _, ok2 := bytes.Cut(rest, []byte("\r\n--"+params["boundary"]))
	if !ok || !ok2 {
		return nil, errors.New("the signed entity has no first part")
	}
	parts, err := readParts(e)
	if err != nil || len(parts) != 2 || parts[1].mt != "application/pkcs7-signature" {
		return nil, fmt.Errorf("the signed entity's parts: %v, %v", partTypes(parts), err)
	}
	p7, err := pkcs7.Parse(parts[1].body)
	if err != nil {
		return nil, fmt.Errorf("parse the signature: %w", err)
	}
	p7.Content = signed
	if err := p7.VerifyWithChain(roots); err != nil {
		return nil, fmt.Errorf("the signature does not verify: %w", err)
	}
	return signed, nil
}

// part is one decoded body part of a multipart entity.
type part struct {
	mt   string
	body []byte
}

func readParts(e *message.Entity) ([]part, error) {
	mr := e.MultipartReader()
	if mr == nil {
		return nil, errors.New("not multipart")
	}
	var out []part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil && !message.IsUnknownCharset(err) {
			return out, err
		}
		mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		b, err := io.ReadAll(p.Body)
		if err != nil {
			return out, err
		}
		out = append(out, part{mt: mt, body: b})
	}
}

func partTypes(ps []part) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.mt
	}
	return out
}

// decodedText concatenates every text part of e, transfer encoding
// undone (quoted-printable or base64, RFC 2045 §6).
func decodedText(e *message.Entity) (string, error) {
	var b strings.Builder
	err := e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		if mt, _, _ := p.Header.ContentType(); strings.HasPrefix(mt, "text/") {
			body, err := io.ReadAll(p.Body)
			if err != nil {
				return err
			}
			b.Write(body)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the message's parts: %w", err)
	}
	return b.String(), nil
}

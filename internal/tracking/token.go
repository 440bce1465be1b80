package tracking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// ErrInvalidToken: the token is malformed, forged or tampered with, or
// names a message or recipient that no longer exists. Callers answer it
// without saying which.
var ErrInvalidToken = errors.New("tracking: invalid token")

// Purpose is what a token may be used for; an open token does not
// unsubscribe, and a click token names one link.
type Purpose byte

// Token purposes.
const (
	PurposeOpen        Purpose = 'o'
	PurposeClick       Purpose = 'c'
	PurposeUnsubscribe Purpose = 'u'
)

// Ref is what a token names: a recipient of a message and, for a click,
// the index of the link among the message's tracked links. It never
// holds an address, a URL or content.
type Ref struct {
	Purpose   Purpose
	AccountID string // a UUID
	MessageID string // a UUID
	Rcpt      int    // message_recipients.rcpt_index
	Link      int    // tracking_links.link_index; clicks only
}

const (
	tokenVersion = 1
	macLen       = 16 // 128 bits of HMAC-SHA256: forgery needs 2^128 tries
	// maxTokenLen bounds what decode looks at (the longest valid token
	// is about 75 characters).
	maxTokenLen = 128
)

// signer makes and checks tokens with a key of its own (see keys.go).
type signer struct{ key []byte }

// encode returns the token of r: base64url (RFC 4648 §5, unpadded) of
//
//	version(1) purpose(1) account(16) message(16) uvarint(rcpt) [uvarint(link)] mac(16)
//
// where mac is HMAC-SHA256 (RFC 2104) over everything before it,
// truncated to 16 bytes. Ids that are not UUIDs cannot be encoded.
func (s signer) encode(r Ref) (string, error) {
	acc, err := uuid.Parse(r.AccountID)
	if err != nil {
		return "", errors.New("tracking: account id is not a UUID")
	}
	msg, err := uuid.Parse(r.MessageID)
	if err != nil {
		return "", errors.New("tracking: message id is not a UUID")
	}
	if r.Rcpt < 0 || r.Link < 0 {
		return "", errors.New("tracking: negative index")
	}
	b := make([]byte, 0, 2+32+2*binary.MaxVarintLen32+macLen)
	b = append(b, tokenVersion, byte(r.Purpose))
	b = append(b, acc[:]...)
	b = append(b, msg[:]...)
	b = binary.AppendUvarint(b, uint64(r.Rcpt))
	if r.Purpose == PurposeClick {
		b = binary.AppendUvarint(b, uint64(r.Link))
	}
	b = append(b, s.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decode checks a token and returns what it names, or ErrInvalidToken.
func (s signer) decode(tok string) (Ref, error) {
	if len(tok) > maxTokenLen || strings.IndexFunc(tok, notBase64URL) >= 0 {
		return Ref{}, ErrInvalidToken
	}
	// Strict and alphabet-only (the decoder skips CR and LF), so each
	// Ref has exactly one token.
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(b) < 2+32+1+macLen {
		return Ref{}, ErrInvalidToken
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	// Check the MAC before looking inside: nothing of a forged token is
	// parsed, and the comparison takes constant time.
	if !hmac.Equal(mac, s.mac(body)) {
		return Ref{}, ErrInvalidToken
	}
	if body[0] != tokenVersion {
		return Ref{}, ErrInvalidToken
	}
	r := Ref{Purpose: Purpose(body[1])}
	switch r.Purpose {
	case PurposeOpen, PurposeClick, PurposeUnsubscribe:
	default:
		return Ref{}, ErrInvalidToken
	}
	r.AccountID = uuid.UUID(body[2:18]).String()
	r.MessageID = uuid.UUID(body[18:34]).String()
	rest := body[34:]
	rcpt, n := binary.Uvarint(rest)
	if n <= 0 || rcpt > 1<<20 {
		return Ref{}, ErrInvalidToken
	}
	r.Rcpt, rest = int(rcpt), rest[n:]
	if r.Purpose == PurposeClick {
		link, n := binary.Uvarint(rest)
		if n <= 0 || link > 1<<20 {
			return Ref{}, ErrInvalidToken
		}
		r.Link, rest = int(link), rest[n:]
	}
	if len(rest) != 0 {
		return Ref{}, ErrInvalidToken
	}
	return r, nil
}

func notBase64URL(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

func (s signer) mac(b []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write(b)
	return h.Sum(nil)[:macLen]
}

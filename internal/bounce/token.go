package bounce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// ErrBadToken: a return-path local part that is not one this server
// signed (forged, altered, truncated or for another key).
var ErrBadToken = errors.New("bounce: invalid return-path token")

// localPrefix starts the local part of every return path: b+<token>.
const localPrefix = "b+"

// macLen is the truncated HMAC-SHA256 length: 80 bits, so forging a
// token takes about 2^80 guesses at the listener (NIST SP 800-107 §5.3.4
// allows truncation to at least 32 bits; 80 keeps the address short).
const macLen = 10

// noIndex is Token.Index when the token names the message only.
const noIndex = -1

// macDomain separates this MAC's inputs from any other use of the key.
const macDomain = "sealpost return-path v1\x00"

// encoding is RFC 4648 §6 base32 in lower case without padding: only
// letters and digits, which survive MTAs that fold the local part's case
// (RFC 5321 §2.4 lets them).
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Token is what a signed return path carries.
type Token struct {
	// MessageID is the message the bounce is about.
	MessageID string
	// Index is the recipient's rcpt_index when the SMTP transaction
	// carried that recipient alone, or -1.
	Index int
}

// Signer makes and checks signed return paths (VERP-style, with a MAC
// so the listener trusts only addresses it handed out).
type Signer struct {
	key    []byte
	domain string
}

// NewSigner returns a signer for return paths at domain with a key of at
// least 32 bytes.
func NewSigner(key []byte, domain string) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("bounce: the return-path key must be at least 32 bytes")
	}
	if domain == "" {
		return nil, errors.New("bounce: no bounce domain")
	}
	return &Signer{key: append([]byte(nil), key...), domain: strings.ToLower(domain)}, nil
}

// Domain is the bounce domain.
func (s *Signer) Domain() string { return s.domain }

// ReturnPath returns the envelope sender for one SMTP transaction of a
// message: b+<token>@<bounce domain>. rcptIndex is the recipient's index
// when the transaction carries that recipient alone, else -1. A message
// id that is not a UUID keeps the From address (it cannot be encoded),
// as does an unusable index.
func (s *Signer) ReturnPath(_, messageID, from string, rcptIndex int) string {
	local, err := s.Local(Token{MessageID: messageID, Index: rcptIndex})
	if err != nil {
		return from
	}
	return local + "@" + s.domain
}

// Local returns the signed local part for t.
func (s *Signer) Local(t Token) (string, error) {
	id, err := uuid.Parse(t.MessageID)
	if err != nil {
		return "", fmt.Errorf("bounce: message id is not a UUID: %w", err)
	}
	payload := id[:]
	if t.Index >= 0 && t.Index <= 0xffff {
		payload = binary.BigEndian.AppendUint16(append([]byte(nil), id[:]...), uint16(t.Index))
	}
	return localPrefix + encoding.EncodeToString(append(payload, s.mac(payload)...)), nil
}

// Parse checks a return-path local part ("b+<token>", any case) and
// returns what it carries, or ErrBadToken.
func (s *Signer) Parse(local string) (Token, error) {
	local = strings.ToLower(local)
	raw, ok := strings.CutPrefix(local, localPrefix)
	if !ok || len(raw) > 64 {
		return Token{}, ErrBadToken
	}
	b, err := encoding.DecodeString(raw)
	if err != nil || (len(b) != 16+macLen && len(b) != 18+macLen) {
		return Token{}, ErrBadToken
	}
	payload, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(mac, s.mac(payload)) {
		return Token{}, ErrBadToken
	}
	// A canonical encoding only: base32 without padding leaves unused low
	// bits in the last character, so two strings can decode alike.
	if encoding.EncodeToString(b) != raw {
		return Token{}, ErrBadToken
	}
	id, _ := uuid.FromBytes(payload[:16])
	t := Token{MessageID: id.String(), Index: noIndex}
	if len(payload) == 18 {
		t.Index = int(binary.BigEndian.Uint16(payload[16:]))
	}
	return t, nil
}

func (s *Signer) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(macDomain))
	h.Write(payload)
	return h.Sum(nil)[:macLen]
}

// secretName is the platform secret keying return paths.
const secretName = "bounce-return-path"

// LoadKey returns the return-path MAC key shared by every node: 32
// random bytes sealed by the master key in platform_secrets, created on
// first use (the first node to insert wins). Rotating the master key's
// keyset keeps it; losing the master key invalidates outstanding return
// paths, so bounces of mail sent before arrive as refused.
func LoadKey(ctx context.Context, db *store.Store, master vault.MasterKey) ([]byte, error) {
	return vault.PlatformSecret(ctx, db, master, secretName)
}

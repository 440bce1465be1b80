package wkd

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"golang.org/x/net/idna"

	"github.com/sealpost/sealpost/internal/pgpmime"
)

// maxKeys bounds the keys of one answer that are validated: each costs
// signature checks.
const maxKeys = 8

// selectKey reads a directory's answer, binary as the draft requires
// (section 3.1) or armored as some servers send, and returns the first
// key that validates for address now, armored on its own. None is
// ErrNoKey with the first key's reason.
func selectKey(body []byte, address string, now time.Time) (*pgpmime.PublicKey, []byte, error) {
	r, err := keyReader(body)
	if err != nil {
		return nil, nil, err
	}
	list, err := openpgp.ReadKeyRing(r)
	if err != nil || len(list) == 0 {
		return nil, nil, noKey("the directory's answer is not an OpenPGP key", pgpmime.ErrMalformedKey)
	}
	var first error
	for _, e := range list[:min(len(list), maxKeys)] {
		armored, err := armorEntity(e)
		if err != nil {
			continue
		}
		pk, err := Validate(armored, address, now)
		if err == nil {
			return pk, armored, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = pgpmime.ErrMalformedKey
	}
	return nil, nil, noKey("the directory's key is not usable for the address: "+strings.TrimPrefix(first.Error(), "pgpmime: "), first)
}

// keyReader returns the key packets of body.
func keyReader(body []byte) (io.Reader, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, noKey("the directory's answer is empty", nil)
	}
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return bytes.NewReader(body), nil
	}
	block, err := armor.Decode(bytes.NewReader(trimmed))
	if err != nil || block.Type != openpgp.PublicKeyType {
		return nil, noKey("the directory's answer is not an OpenPGP public key", pgpmime.ErrMalformedKey)
	}
	return block.Body, nil
}

// armorEntity armors e's public key alone (RFC 9580 §6.2), the form
// package pgpmime reads.
func armorEntity(e *openpgp.Entity) ([]byte, error) {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Validate checks an armored key can encrypt to address at now
// (pgpmime.ParsePublicKey: a user id for the address, not expired or
// revoked, an encryption-capable key), accepting a user id that spells an
// internationalized domain in Unicode as well as in A-labels.
func Validate(armored []byte, address string, now time.Time) (*pgpmime.PublicKey, error) {
	pk, err := pgpmime.ParsePublicKey(armored, address, now)
	if !errors.Is(err, pgpmime.ErrAddressMismatch) {
		return pk, err
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return nil, err
	}
	u, uerr := idna.Lookup.ToUnicode(address[at+1:])
	if uerr != nil || u == address[at+1:] {
		return nil, err
	}
	if pk, uerr := pgpmime.ParsePublicKey(armored, address[:at+1]+u, now); uerr == nil {
		return pk, nil
	}
	return nil, err
}

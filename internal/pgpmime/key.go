// Package pgpmime validates OpenPGP keys (RFC 9580, RFC 4880) for a
// recipient or sender address and encrypts, optionally signing, complete
// RFC 5322 messages into PGP/MIME (RFC 3156). Which recipients get PGP is
// decided elsewhere (package secureline); storing keys is the key
// management API's job. This package holds no state.
package pgpmime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Errors callers branch on (the HTTP layer maps each to a problem type).
// Messages never contain key material or user ids.
var (
	ErrMalformedKey     = errors.New("pgpmime: malformed armored key")
	ErrNotPublicKey     = errors.New("pgpmime: expected a public key block")
	ErrNotPrivateKey    = errors.New("pgpmime: expected a private key block")
	ErrKeyExpired       = errors.New("pgpmime: key expired")
	ErrKeyRevoked       = errors.New("pgpmime: key revoked")
	ErrNoEncryptionKey  = errors.New("pgpmime: key has no valid encryption-capable (sub)key")
	ErrNoSigningKey     = errors.New("pgpmime: key has no valid signing-capable (sub)key")
	ErrAddressMismatch  = errors.New("pgpmime: key has no valid user id for the address")
	ErrWeakKey          = errors.New("pgpmime: key is too weak")
	ErrLockedPrivateKey = errors.New("pgpmime: private key is locked and the passphrase does not open it")
	ErrKeyPairMismatch  = errors.New("pgpmime: the secret key material does not match the public key")
)

// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const MinRSABits = 2048

// PublicKey is a recipient key that passed validation for one address.
type PublicKey struct {
	entity *openpgp.Entity
	// Fingerprint is the primary key fingerprint, upper-case hex.
	Fingerprint string
	// Address is the address the key was validated for, as given.
	Address string
	// Expires is when the encryption subkey (or the primary key, if
	// sooner) stops being valid; zero means it does not expire.
	Expires time.Time
}

// SigningKey is a sender key, unlocked, that passed validation.
type SigningKey struct {
	entity      *openpgp.Entity
	Fingerprint string
	// Address is the user id address the key was validated for.
	Address string
	// Expires is when the signing (sub)key (or the primary key, if
	// sooner) stops being valid; zero means it does not expire.
	Expires time.Time
}

// ParsePublicKey reads one armored public key (RFC 9580 §6.2) and checks
// it can encrypt to address at now: not revoked, not expired, a
// non-revoked user id for the address, and a valid encryption-capable key
// of acceptable strength.
func ParsePublicKey(armored []byte, address string, now time.Time) (*PublicKey, error) {
	e, err := readEntity(armored, openpgp.PublicKeyType)
	if err != nil {
		return nil, err
	}
	if err := checkEntity(e, address, now); err != nil {
		return nil, err
	}
	k, ok := e.EncryptionKey(now)
	if !ok {
		return nil, subkeyFailure(e, now, packet.KeyFlagEncryptCommunications)
	}
	if err := checkStrength(k.PublicKey); err != nil {
		return nil, err
	}
	return &PublicKey{
		entity:      e,
		Fingerprint: fingerprint(e),
		Address:     address,
		Expires:     expiry(e, k),
	}, nil
}

// ParseSigningKey reads one armored private key, unlocks it with
// passphrase when it is protected, and checks it can sign for address at
// now (the same rules as ParsePublicKey, for a signing-capable key).
// Every protected (sub)key is unlocked, so the key can be stored as one
// unlocked whole (SigningKey.ArmoredPrivate); a passphrase given for an
// unprotected key is ignored.
func ParseSigningKey(armored, passphrase []byte, address string, now time.Time) (*SigningKey, error) {
	e, err := readEntity(armored, openpgp.PrivateKeyType)
	if err != nil {
		return nil, err
	}
	return newSigningKey(e, passphrase, address, now)
}

// ParseDomainSigningKey is ParseSigningKey for the first user id (in
// sorted order) whose address inDomain accepts: a key that signs for a
// whole domain names one of its own addresses, SigningKey.Address.
// Without such a user id it fails with ErrAddressMismatch.
func ParseDomainSigningKey(armored, passphrase []byte, inDomain func(address string) bool, now time.Time) (*SigningKey, error) {
	e, err := readEntity(armored, openpgp.PrivateKeyType)
	if err != nil {
		return nil, err
	}
	first := ErrAddressMismatch
	for _, addr := range userIDAddresses(e) {
		if !inDomain(addr) {
			continue
		}
		k, err := newSigningKey(e, passphrase, addr, now)
		switch {
		case err == nil:
			return k, nil
		case errors.Is(err, ErrLockedPrivateKey), errors.Is(err, ErrKeyPairMismatch):
			return nil, err // the same for every user id
		case errors.Is(first, ErrAddressMismatch):
			first = err
		}
	}
	return nil, first
}

// CheckSigningPublicKey applies ParseSigningKey's rules to the public
// part of a sender key (what is stored to list it) and returns when it
// expires (zero: never).
func CheckSigningPublicKey(armored []byte, address string, now time.Time) (time.Time, error) {
	e, err := readEntity(armored, openpgp.PublicKeyType)
	if err != nil {
		return time.Time{}, err
	}
	k, err := signingKey(e, address, now)
	if err != nil {
		return time.Time{}, err
	}
	return expiry(e, k), nil
}

// newSigningKey validates e for signing as address and unlocks it.
func newSigningKey(e *openpgp.Entity, passphrase []byte, address string, now time.Time) (*SigningKey, error) {
	k, err := signingKey(e, address, now)
	if err != nil {
		return nil, err
	}
	if k.PrivateKey == nil || k.PrivateKey.Dummy() {
		// gpg --export-secret-subkeys of a key whose signing key is the
		// (offline) primary: nothing here can sign.
		return nil, ErrNoSigningKey
	}
	if err := unlock(e, passphrase); err != nil {
		return nil, err
	}
	return &SigningKey{entity: e, Fingerprint: fingerprint(e), Address: address, Expires: expiry(e, k)}, nil
}

// signingKey applies the primary-key, user-id and strength rules and
// returns the (sub)key that signs at now.
func signingKey(e *openpgp.Entity, address string, now time.Time) (openpgp.Key, error) {
	if err := checkEntity(e, address, now); err != nil {
		return openpgp.Key{}, err
	}
	k, ok := e.SigningKey(now)
	if !ok {
		return openpgp.Key{}, subkeyFailure(e, now, packet.KeyFlagSign)
	}
	if err := checkStrength(k.PublicKey); err != nil {
		return openpgp.Key{}, err
	}
	return k, nil
}

// unlock decrypts every protected secret (sub)key of e (GnuPG protects
// them all with the one passphrase; gnu-dummy stubs are skipped). Secret
// material that does not belong to its public key fails go-crypto's key
// validation, which is told apart from a wrong passphrase (RFC 9580
// §5.5.3: the SHA-1 or checksum over the decrypted material fails).
func unlock(e *openpgp.Entity, passphrase []byte) error {
	err := e.DecryptPrivateKeys(passphrase)
	var invalid pgperrors.KeyInvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return ErrKeyPairMismatch
	}
	return ErrLockedPrivateKey
}

// ArmoredPublic returns the key's public part, armored (RFC 9580 §6.2):
// what may be shown and stored in the clear.
func (k *SigningKey) ArmoredPublic() ([]byte, error) {
	return armorEntity(openpgp.PublicKeyType, k.entity.Serialize)
}

// ArmoredPrivate returns the unlocked private key, armored, for sealed
// storage; ParseSigningKey reads it back without a passphrase. The
// result is secret: never log or return it.
func (k *SigningKey) ArmoredPrivate() ([]byte, error) {
	e := *k.entity
	// A subkey with no secret part at all cannot be written as a secret
	// subkey packet; it is not needed to sign.
	e.Subkeys = slices.DeleteFunc(slices.Clone(e.Subkeys), func(s openpgp.Subkey) bool { return s.PrivateKey == nil })
	return armorEntity(openpgp.PrivateKeyType, func(w io.Writer) error { return e.SerializePrivateWithoutSigning(w, nil) })
}

func armorEntity(blockType string, serialize func(io.Writer) error) ([]byte, error) {
	var b bytes.Buffer
	w, err := armor.Encode(&b, blockType, nil)
	if err != nil {
		return nil, fmt.Errorf("pgpmime: armor: %w", err)
	}
	if err := serialize(w); err != nil {
		return nil, fmt.Errorf("pgpmime: serialize key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("pgpmime: armor: %w", err)
	}
	return b.Bytes(), nil
}

// userIDAddresses lists the addresses of e's user ids, sorted.
func userIDAddresses(e *openpgp.Entity) []string {
	var out []string
	for _, id := range e.Identities {
		if id.UserId != nil && id.UserId.Email != "" {
			out = append(out, id.UserId.Email)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// readEntity decodes an armor block of the wanted type holding exactly
// one key.
func readEntity(armored []byte, wantType string) (*openpgp.Entity, error) {
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedKey, armorReason(err))
	}
	if block.Type != wantType {
		if wantType == openpgp.PublicKeyType {
			return nil, ErrNotPublicKey
		}
		return nil, ErrNotPrivateKey
	}
	list, err := openpgp.ReadKeyRing(block.Body)
	var invalid pgperrors.KeyInvalidError
	if errors.As(err, &invalid) && wantType == openpgp.PrivateKeyType {
		// An unprotected secret key is validated against its public key
		// as it is read.
		return nil, ErrKeyPairMismatch
	}
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable key packets", ErrMalformedKey)
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("%w: the block holds %d keys, want exactly one", ErrMalformedKey, len(list))
	}
	return list[0], nil
}

// armorReason names what is wrong with the armor without echoing input.
func armorReason(err error) string {
	if errors.Is(err, io.EOF) {
		return "no armor header line"
	}
	return "bad armor (header, base64 or checksum)"
}

// checkEntity applies the primary-key and user-id rules.
func checkEntity(e *openpgp.Entity, address string, now time.Time) error {
	// RFC 9580 §5.2.1: a key revocation signature (type 0x20) retires the
	// whole key.
	if e.Revoked(now) {
		return ErrKeyRevoked
	}
	sig, _ := e.PrimarySelfSignature()
	if sig == nil {
		return fmt.Errorf("%w: no self-signature", ErrMalformedKey)
	}
	if e.PrimaryKey.CreationTime.After(now) {
		// go-crypto treats a key from the future as expired; say so.
		return fmt.Errorf("%w: key creation time is in the future (clock skew?)", ErrKeyExpired)
	}
	// RFC 9580 Key Expiration Time subpacket: counted from key creation.
	if e.PrimaryKey.KeyExpired(sig, now) || sig.SigExpired(now) {
		return ErrKeyExpired
	}
	return checkIdentity(e, address, now)
}

// checkIdentity wants a user id whose address equals address (compared
// case-insensitively, as mailbox providers and WKD do) with a valid,
// unrevoked self-signature.
func checkIdentity(e *openpgp.Entity, address string, now time.Time) error {
	want := strings.TrimSpace(address)
	if want == "" {
		return ErrAddressMismatch
	}
	found := error(ErrAddressMismatch)
	for _, id := range e.Identities {
		if id.UserId == nil || !strings.EqualFold(id.UserId.Email, want) {
			continue
		}
		switch {
		case id.Revoked(now):
			found = ErrKeyRevoked
		case id.SelfSignature == nil:
			// no certification of this user id: keep looking
		case id.SelfSignature.SigExpired(now):
			found = ErrKeyExpired
		default:
			return nil
		}
	}
	return found
}

// subkeyFailure explains why no key for the usage is valid: expired or
// revoked candidates give those errors; otherwise there is none.
func subkeyFailure(e *openpgp.Entity, now time.Time, usage int) error {
	wantEnc := usage == packet.KeyFlagEncryptCommunications
	var expired, revoked bool
	for _, sk := range e.Subkeys {
		if sk.Sig == nil || !sk.Sig.FlagsValid {
			continue
		}
		capable := sk.Sig.FlagSign && sk.PublicKey.PubKeyAlgo.CanSign()
		if wantEnc {
			capable = (sk.Sig.FlagEncryptCommunications || sk.Sig.FlagEncryptStorage) && sk.PublicKey.PubKeyAlgo.CanEncrypt()
		}
		if !capable {
			continue
		}
		switch {
		case sk.Revoked(now):
			revoked = true
		case sk.PublicKey.KeyExpired(sk.Sig, now) || sk.Sig.SigExpired(now):
			expired = true
		}
	}
	switch {
	case revoked:
		return ErrKeyRevoked
	case expired:
		return ErrKeyExpired
	case wantEnc:
		return ErrNoEncryptionKey
	default:
		return ErrNoSigningKey
	}
}

// checkStrength refuses RSA, DSA and ElGamal keys below MinRSABits.
func checkStrength(pk *packet.PublicKey) error {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSAEncryptOnly, packet.PubKeyAlgoRSASignOnly,
		packet.PubKeyAlgoDSA, packet.PubKeyAlgoElGamal:
		bits, err := pk.BitLength()
		if err != nil || bits < MinRSABits {
			return fmt.Errorf("%w: %d-bit key, want at least %d", ErrWeakKey, bits, MinRSABits)
		}
	}
	return nil
}

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
}

// expiry is the earlier of the primary key's and the chosen subkey's
// expiration (RFC 9580 Key Expiration Time), zero when neither expires.
func expiry(e *openpgp.Entity, k openpgp.Key) time.Time {
	var out time.Time
	consider := func(pk *packet.PublicKey, sig *packet.Signature) {
		if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
			return
		}
		t := pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
		if out.IsZero() || t.Before(out) {
			out = t
		}
	}
	sig, _ := e.PrimarySelfSignature()
	consider(e.PrimaryKey, sig)
	if k.PublicKey != e.PrimaryKey {
		consider(k.PublicKey, k.SelfSignature)
	}
	return out
}

package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/pgpmime"
)

// UploadPGPSender validates and stores a sender's armored OpenPGP
// private key for signing (pgpmime.ParseSigningKey: a signing-capable
// key of acceptable strength, not expired or revoked, a user id for the
// address, secret material that belongs to the public key), for one
// address or, with Domain, for every address of a domain; then the key
// must hold a user id in that domain. A protected key is unlocked with
// Passphrase, which is used only here. The key is stored unlocked and
// sealed by the vault, as S/MIME sender keys are; its public part is
// stored in the clear for listing.
func (s *Service) UploadPGPSender(ctx context.Context, actor account.Actor, u Upload) (Stored, error) {
	lookup, err := senderLookup(u)
	if err != nil {
		return Stored{}, err
	}
	if err := required([2]string{"private_key", u.PrivateKey}); err != nil {
		return Stored{}, err
	}
	if len(u.PrivateKey) > MaxMaterialBytes {
		return Stored{}, &ValidationError{Field: "private_key", Cause: CauseMalformed, Message: fmt.Sprintf("larger than %d bytes", MaxMaterialBytes)}
	}
	if len(u.Passphrase) > MaxPassphraseBytes {
		return Stored{}, &FieldError{Field: "passphrase", Message: fmt.Sprintf("at most %d bytes", MaxPassphraseBytes)}
	}
	sk, err := s.parsePGPSender(u, lookup, s.now())
	if err != nil {
		return Stored{}, pgpSenderRefusal(u, err)
	}
	public, err := sk.ArmoredPublic()
	if err != nil {
		return Stored{}, err
	}
	private, err := sk.ArmoredPrivate()
	if err != nil {
		return Stored{}, err
	}
	return s.put(ctx, actor, row{kind: PGPSender, address: lookup, validatedAs: sk.Address, fingerprint: sk.Fingerprint,
		material: string(public), expires: sk.Expires, private: private})
}

// senderLookup checks that a sender upload names an address or a domain
// (not both) and returns its lookup key.
func senderLookup(u Upload) (string, error) {
	switch {
	case u.Address != "" && u.Domain != "":
		return "", &FieldError{Field: "domain", Message: "give address or domain, not both"}
	case u.Address == "" && u.Domain == "":
		return "", &FieldError{Field: "address", Message: "required (or domain)"}
	case u.Address != "":
		return normalizeAddress("address", u.Address)
	}
	return normalizeDomain("domain", u.Domain)
}

// parsePGPSender validates the key for the address (in each of its
// spellings), or for a user id of the domain.
func (s *Service) parsePGPSender(u Upload, lookup string, now time.Time) (*pgpmime.SigningKey, error) {
	armored, passphrase := []byte(u.PrivateKey), []byte(u.Passphrase)
	if u.Address == "" {
		return pgpmime.ParseDomainSigningKey(armored, passphrase, func(a string) bool {
			norm, err := normalizeAddress("address", a)
			return err == nil && domainOf(norm) == lookup
		}, now)
	}
	var sk *pgpmime.SigningKey
	_, err := validateForms(lookup, func(f string) error {
		var err error
		sk, err = pgpmime.ParseSigningKey(armored, passphrase, f, now)
		return err
	})
	return sk, err
}

// pgpSenderRefusal names the field a refusal is about: the passphrase
// for a key it does not open, the address or domain for a key without a
// matching user id, the private key for everything else. Messages never
// quote the key or the passphrase.
func pgpSenderRefusal(u Upload, err error) error {
	switch {
	case errors.Is(err, pgpmime.ErrLockedPrivateKey):
		msg := "the passphrase does not open the protected private key"
		if u.Passphrase == "" {
			msg = "the private key is protected by a passphrase; give passphrase"
		}
		return &ValidationError{Field: "passphrase", Cause: CauseLocked, Message: msg, Err: err}
	case isMismatch(err) && u.Address == "":
		return &ValidationError{Field: "domain", Cause: CauseAddressMismatch, Message: "the key has no valid user id in the domain", Err: err}
	}
	return uploadRefusal("private_key", err)
}

// SenderPGP returns the signing key for a sender address: a key uploaded
// for the address itself, else one uploaded for its domain, newest
// first, that validates now for signing; nil, nil when there is none. A
// domain key signs as its own user id in the domain.
func (s *Service) SenderPGP(ctx context.Context, accountID, address string) (*pgpmime.SigningKey, error) {
	addr, err := normalizeAddress("address", address)
	if err != nil {
		return nil, nil
	}
	cs, err := s.candidates(ctx, accountID, PGPSender, addr, domainOf(addr))
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, c := range cs {
		// Validate the public part before opening the key: an expired
		// or revoked one needs no decryption.
		if _, err := pgpmime.CheckSigningPublicKey([]byte(c.material), c.validatedAs, now); err != nil {
			continue
		}
		private, err := s.vault.Open(ctx, accountID, c.sealed, privateAD(accountID, c.id, PGPSender))
		if err != nil {
			return nil, fmt.Errorf("open sender key %s: %w", c.id, err)
		}
		// The public part validated, so a stored key that does not is
		// damaged: a fault, not a key to skip.
		sk, err := pgpmime.ParseSigningKey(private, nil, c.validatedAs, now)
		if err != nil {
			return nil, fmt.Errorf("sender key %s: %w", c.id, err)
		}
		return sk, nil
	}
	return nil, nil
}

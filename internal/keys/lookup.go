package keys

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
)

// candidate is a stored key a lookup may return once it validates.
type candidate struct {
	id, material, validatedAs string
	sealed                    []byte
}

// candidates returns the account's keys of kind for the lookup keys in
// order of preference (the first lookup key before the second, then the
// newest upload first), skipping those whose stored expiry has passed.
func (s *Service) candidates(ctx context.Context, accountID string, kind Kind, first, second string) ([]candidate, error) {
	rows, err := s.db.Reader().Query(ctx, `SELECT id, material, validated_as, private_sealed FROM mail_keys
		WHERE account_id = $1 AND kind = $2 AND address IN ($3, $4) AND (expires_at = 0 OR expires_at > $5)
		ORDER BY CASE WHEN address = $3 THEN 0 ELSE 1 END, created_at DESC, id DESC`,
		accountID, string(kind), first, second, store.Micros(s.now()))
	if err != nil {
		return nil, fmt.Errorf("look up %s keys: %w", kind, err)
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.material, &c.validatedAs, &c.sealed); err != nil {
			return nil, fmt.Errorf("read %s key: %w", kind, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s keys: %w", kind, err)
	}
	return out, nil
}

// RecipientPGP returns the account's OpenPGP key for a recipient
// address that validates now (the newest such upload), or nil, nil when
// there is none: keys that expired or whose user id was revoked since
// upload are skipped.
func (s *Service) RecipientPGP(ctx context.Context, accountID, address string) (*pgpmime.PublicKey, error) {
	addr, err := normalizeAddress("address", address)
	if err != nil {
		return nil, nil // an address that does not parse has no keys
	}
	cs, err := s.candidates(ctx, accountID, PGP, addr, addr)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, c := range cs {
		if pk, err := pgpmime.ParsePublicKey([]byte(c.material), c.validatedAs, now); err == nil {
			return pk, nil
		}
	}
	return nil, nil
}

// RecipientSMIME returns the account's S/MIME certificate for a
// recipient address that validates now for encryption against the
// configured trust anchors and CRLs, or nil, nil when there is none.
func (s *Service) RecipientSMIME(ctx context.Context, accountID, address string) (*smime.Recipient, error) {
	addr, err := normalizeAddress("address", address)
	if err != nil {
		return nil, nil
	}
	cs, err := s.candidates(ctx, accountID, SMIME, addr, addr)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, c := range cs {
		leaf, inter, err := smime.ParseCertificates([]byte(c.material))
		if err != nil {
			continue
		}
		if r, err := smime.NewRecipient(leaf, inter, c.validatedAs, s.opts.SMIME, now); err == nil {
			return r, nil
		}
	}
	return nil, nil
}

// SenderSMIME returns the signer for a sender address: a certificate
// uploaded for the address itself, else one uploaded for its domain,
// that validates now for signing; nil, nil when there is none. A domain
// certificate signs as the certificate's own address in the domain.
func (s *Service) SenderSMIME(ctx context.Context, accountID, address string) (*smime.Signer, error) {
	addr, err := normalizeAddress("address", address)
	if err != nil {
		return nil, nil
	}
	cs, err := s.candidates(ctx, accountID, SMIMESender, addr, domainOf(addr))
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, c := range cs {
		leaf, inter, err := smime.ParseCertificates([]byte(c.material))
		if err != nil {
			continue
		}
		// Validate the certificate before opening the key: an expired
		// or untrusted one needs no decryption.
		if _, err := smime.Validate(leaf, inter, c.validatedAs, smime.Signing, s.opts.SMIME, now); err != nil {
			continue
		}
		der, err := s.vault.Open(ctx, accountID, c.sealed, privateAD(accountID, c.id, SMIMESender))
		if err != nil {
			return nil, fmt.Errorf("open sender key %s: %w", c.id, err)
		}
		key, err := openPrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("sender key %s: %w", c.id, err)
		}
		if signer, err := smime.NewSigner(leaf, inter, key, c.validatedAs, s.opts.SMIME, now); err == nil {
			return signer, nil
		}
	}
	return nil, nil
}

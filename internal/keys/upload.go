package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
)

// row is a key about to be stored.
type row struct {
	kind        Kind
	address     string // lookup key: address, or domain for a domain sender
	validatedAs string
	fingerprint string
	material    string
	expires     time.Time
	private     []byte // PKCS #8 DER, or the unlocked armored OpenPGP key; sealed before it is stored
}

// UploadPGP validates and stores a recipient's armored OpenPGP public
// key (pgpmime.ParsePublicKey: not expired or revoked, a user id for the
// address, an encryption-capable subkey of acceptable strength).
func (s *Service) UploadPGP(ctx context.Context, actor account.Actor, u Upload) (Stored, error) {
	if err := required([2]string{"address", u.Address}, [2]string{"public_key", u.PublicKey}); err != nil {
		return Stored{}, err
	}
	addr, err := normalizeAddress("address", u.Address)
	if err != nil {
		return Stored{}, err
	}
	if len(u.PublicKey) > MaxMaterialBytes {
		return Stored{}, &ValidationError{Field: "public_key", Cause: CauseMalformed, Message: fmt.Sprintf("larger than %d bytes", MaxMaterialBytes)}
	}
	now := s.now()
	var pk *pgpmime.PublicKey
	form, err := validateForms(addr, func(f string) error {
		var err error
		pk, err = pgpmime.ParsePublicKey([]byte(u.PublicKey), f, now)
		return err
	})
	if err != nil {
		return Stored{}, uploadRefusal("public_key", err)
	}
	return s.put(ctx, actor, row{kind: PGP, address: addr, validatedAs: form, fingerprint: pk.Fingerprint,
		material: strings.TrimSpace(u.PublicKey) + "\n", expires: pk.Expires})
}

// UploadSMIME validates and stores a recipient's S/MIME certificate
// (PEM, leaf first, optionally followed by intermediates) for encryption
// (smime.NewRecipient against the configured trust anchors and CRLs).
func (s *Service) UploadSMIME(ctx context.Context, actor account.Actor, u Upload) (Stored, error) {
	if err := required([2]string{"address", u.Address}, [2]string{"certificate", u.Certificate}); err != nil {
		return Stored{}, err
	}
	addr, err := normalizeAddress("address", u.Address)
	if err != nil {
		return Stored{}, err
	}
	leaf, inter, chainPEM, err := parseChain("certificate", []byte(u.Certificate))
	if err != nil {
		return Stored{}, err
	}
	now := s.now()
	var r *smime.Recipient
	form, err := validateForms(addr, func(f string) error {
		var err error
		r, err = smime.NewRecipient(leaf, inter, f, s.opts.SMIME, now)
		return err
	})
	if err != nil {
		return Stored{}, uploadRefusal("certificate", err)
	}
	return s.put(ctx, actor, row{kind: SMIME, address: addr, validatedAs: form, fingerprint: certFingerprint(leaf),
		material: chainPEM, expires: chainExpiry(r.Chain)})
}

// UploadSender validates and stores a sender's S/MIME certificate and
// private key for signing (smime.NewSigner), for one address or, with
// Domain, for every address of a domain; then the certificate must hold
// an address in that domain, and signatures name that address.
func (s *Service) UploadSender(ctx context.Context, actor account.Actor, u Upload) (Stored, error) {
	lookup, err := senderLookup(u)
	if err != nil {
		return Stored{}, err
	}
	if err := required([2]string{"certificate", u.Certificate}, [2]string{"private_key", u.PrivateKey}); err != nil {
		return Stored{}, err
	}
	leaf, inter, chainPEM, err := parseChain("certificate", []byte(u.Certificate))
	if err != nil {
		return Stored{}, err
	}
	key, der, err := parsePrivateKey("private_key", []byte(u.PrivateKey))
	if err != nil {
		return Stored{}, err
	}
	now := s.now()
	var form string
	if u.Address != "" {
		form, err = validateForms(lookup, func(f string) error {
			_, err := smime.NewSigner(leaf, inter, key, f, s.opts.SMIME, now)
			return err
		})
	} else {
		form, err = s.domainSigner(leaf, inter, key, lookup, now)
	}
	if err != nil {
		return Stored{}, uploadRefusal("certificate", err)
	}
	return s.put(ctx, actor, row{kind: SMIMESender, address: lookup, validatedAs: form, fingerprint: certFingerprint(leaf),
		material: chainPEM, expires: leaf.NotAfter.UTC(), private: der})
}

// domainSigner validates the certificate for signing as each of its
// addresses in domain and returns the first that passes.
func (s *Service) domainSigner(leaf *x509.Certificate, inter []*x509.Certificate, key crypto.Signer, domain string, now time.Time) (string, error) {
	var first error
	for _, a := range certAddresses(leaf) {
		norm, err := normalizeAddress("address", a)
		if err != nil || domainOf(norm) != domain {
			continue
		}
		if _, err := smime.NewSigner(leaf, inter, key, a, s.opts.SMIME, now); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		return a, nil
	}
	if first != nil {
		return "", first
	}
	return "", &ValidationError{Field: "certificate", Cause: CauseAddressMismatch,
		Message: "certificate holds no address in the domain"}
}

// oidEmailAddress is PKCS #9 emailAddress, the legacy subject attribute
// RFC 8550 §3 still allows.
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// certAddresses lists the certificate's rfc822Name subjectAltNames and
// subject emailAddress attributes (RFC 8550 §3).
func certAddresses(c *x509.Certificate) []string {
	out := append([]string(nil), c.EmailAddresses...)
	for _, n := range c.Subject.Names {
		if v, ok := n.Value.(string); ok && n.Type.Equal(oidEmailAddress) {
			out = append(out, v)
		}
	}
	return out
}

// chainExpiry is the earliest NotAfter of a verified chain.
func chainExpiry(chain []*x509.Certificate) time.Time {
	var out time.Time
	for _, c := range chain {
		if out.IsZero() || c.NotAfter.Before(out) {
			out = c.NotAfter
		}
	}
	return out.UTC()
}

// uploadRefusal names the address field for an address mismatch, the
// material field for everything else.
func uploadRefusal(field string, err error) error {
	if isMismatch(err) {
		field = "address"
	}
	return refusal(field, err)
}

func required(fields ...[2]string) error {
	for _, f := range fields {
		if strings.TrimSpace(f[1]) == "" {
			return &FieldError{Field: f[0], Message: "required"}
		}
	}
	return nil
}

// privateAD binds a sealed private key to its account (the vault adds
// the account too), its key id and its kind, so a sealed key copied to
// another row does not open.
func privateAD(accountID, id string, kind Kind) []byte {
	what := "smime-private-key"
	if kind == PGPSender {
		what = "pgp-private-key"
	}
	return []byte("keys/" + accountID + "/" + id + "/" + what)
}

// put stores r for the actor's account. A key with the same kind,
// address and fingerprint is replaced in place (same id); otherwise a
// new one is added, up to MaxPerAddress.
func (s *Service) put(ctx context.Context, actor account.Actor, r row) (Stored, error) {
	accountID := actor.Principal.AccountID
	var existing string
	err := s.db.Reader().QueryRow(ctx, `SELECT id FROM mail_keys WHERE account_id = $1 AND kind = $2 AND address = $3 AND fingerprint = $4`,
		accountID, string(r.kind), r.address, r.fingerprint).Scan(&existing)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Stored{}, fmt.Errorf("look up key: %w", err)
	}
	id := existing
	if id == "" {
		id = store.NewID()
	}
	// Seal before the transaction: the vault may write (a first keyset)
	// on its own connection.
	var sealed []byte
	if r.private != nil {
		if sealed, err = s.vault.Seal(ctx, accountID, r.private, privateAD(accountID, id, r.kind)); err != nil {
			return Stored{}, err
		}
	}
	now := s.now()
	expires := int64(0)
	if !r.expires.IsZero() {
		expires = store.Micros(r.expires)
	}
	replaced := false
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		if existing != "" {
			n, err := tx.Exec(ctx, `UPDATE mail_keys SET validated_as = $1, material = $2, private_sealed = $3, expires_at = $4, updated_at = $5
				WHERE account_id = $6 AND id = $7`, r.validatedAs, r.material, sealed, expires, store.Micros(now), accountID, id)
			if err != nil {
				return fmt.Errorf("replace key: %w", err)
			}
			if n > 0 {
				replaced = true
				return s.audit(ctx, tx, actor, r.kind, "uploaded", id, r.fingerprint, true)
			}
			// Deleted meanwhile: add it again under the same id.
		}
		var count int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM mail_keys WHERE account_id = $1 AND kind = $2 AND address = $3`,
			accountID, string(r.kind), r.address).Scan(&count); err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		if count >= MaxPerAddress {
			return ErrTooMany
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mail_keys (id, account_id, kind, address, validated_as, fingerprint, material, private_sealed,
			expires_at, created_at, updated_at, actor_kind, actor_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)`,
			id, accountID, string(r.kind), r.address, r.validatedAs, r.fingerprint, r.material, sealed, expires, store.Micros(now),
			string(actor.Principal.ActorKind), actor.Principal.ActorID); err != nil {
			return fmt.Errorf("store key: %w", err)
		}
		return s.audit(ctx, tx, actor, r.kind, "uploaded", id, r.fingerprint, false)
	})
	if errors.Is(err, store.ErrConflict) {
		return Stored{}, ErrConcurrent
	}
	if err != nil {
		return Stored{}, err
	}
	k, err := s.get(ctx, accountID, r.kind, id)
	if err != nil {
		return Stored{}, err
	}
	return Stored{Key: k, Replaced: replaced}, nil
}

// audit records an upload or deletion: the kind, the id and the
// fingerprint, never key material or the address (a patient's address
// is personal data the audit log does not need).
func (s *Service) audit(ctx context.Context, tx store.Tx, actor account.Actor, kind Kind, verb, id, fingerprint string, replaced bool) error {
	action := "key." + string(kind) + "." + verb
	details := map[string]string{"kind": string(kind), "fingerprint": fingerprint}
	if verb == "uploaded" {
		details["replaced"] = strconv.FormatBool(replaced)
	}
	_, err := s.log.AppendTx(ctx, tx, audit.Event{AccountID: actor.Principal.AccountID, ActorKind: string(actor.Principal.ActorKind),
		ActorID: actor.Principal.ActorID, Action: action, Target: "key/" + id, Outcome: audit.OutcomeSuccess,
		SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: details})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

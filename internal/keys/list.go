package keys

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
)

// Page sizes of List.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

const keyColumns = `id, kind, address, validated_as, fingerprint, material, expires_at, created_at, updated_at, actor_kind, actor_id`

// List returns a page of the account's keys of kind, oldest first, each
// with its status now.
func (s *Service) List(ctx context.Context, accountID string, kind Kind, f Filter) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	q := `SELECT ` + keyColumns + ` FROM mail_keys WHERE account_id = $1 AND kind = $2`
	args := []any{accountID, string(kind)}
	if f.Address != "" {
		addr, err := s.filterAddress(kind, f.Address)
		if err != nil {
			return Page{}, err
		}
		args = append(args, addr)
		q += fmt.Sprintf(" AND address = $%d", len(args))
	}
	if f.Cursor != "" {
		after, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		args = append(args, after)
		q += fmt.Sprintf(" AND id > $%d", len(args))
	}
	args = append(args, limit+1)
	q += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	keys, err := s.query(ctx, q, args...)
	if err != nil {
		return Page{}, err
	}
	var p Page
	if len(keys) > limit {
		keys = keys[:limit]
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(keys[limit-1].ID))
	}
	p.Keys = keys
	return p, nil
}

// filterAddress normalizes a list filter: an address, or for senders
// also a domain.
func (s *Service) filterAddress(kind Kind, v string) (string, error) {
	if kind.sender() && !strings.Contains(v, "@") {
		return normalizeDomain("address", v)
	}
	return normalizeAddress("address", v)
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || len(b) > 64 {
		return "", ErrBadCursor
	}
	return string(b), nil
}

// get returns one key of the account (store.ErrNotFound when it has no
// key of that kind with the id).
func (s *Service) get(ctx context.Context, accountID string, kind Kind, id string) (Key, error) {
	keys, err := s.query(ctx, `SELECT `+keyColumns+` FROM mail_keys WHERE account_id = $1 AND kind = $2 AND id = $3`,
		accountID, string(kind), id)
	if err != nil {
		return Key{}, err
	}
	if len(keys) == 0 {
		return Key{}, store.ErrNotFound
	}
	return keys[0], nil
}

// Get returns one key of the account (store.ErrNotFound when it has no
// key of that kind with the id).
func (s *Service) Get(ctx context.Context, accountID string, kind Kind, id string) (Key, error) {
	return s.get(ctx, accountID, kind, id)
}

func (s *Service) query(ctx context.Context, q string, args ...any) ([]Key, error) {
	rows, err := s.db.Reader().Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	now := s.now()
	var out []Key
	for rows.Next() {
		var k Key
		var kind, material string
		var expires, created, updated int64
		if err := rows.Scan(&k.ID, &kind, &k.Address, &k.ValidatedAs, &k.Fingerprint, &material, &expires, &created, &updated,
			&k.CreatedBy.Kind, &k.CreatedBy.ID); err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
		k.Kind = Kind(kind)
		if expires != 0 {
			k.ExpiresAt = store.FromMicros(expires)
		}
		k.CreatedAt, k.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
		if k.Kind.sender() && !strings.Contains(k.Address, "@") {
			k.Domain, k.Address = k.Address, ""
		}
		s.describe(&k, material, now)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// describe fills in the key's status now and, for certificates, the
// leaf's names.
func (s *Service) describe(k *Key, material string, now time.Time) {
	var err error
	switch k.Kind {
	case PGP:
		_, err = pgpmime.ParsePublicKey([]byte(material), k.ValidatedAs, now)
	case PGPSender:
		_, err = pgpmime.CheckSigningPublicKey([]byte(material), k.ValidatedAs, now)
	case SMIME, SMIMESender:
		leaf, inter, perr := smime.ParseCertificates([]byte(material))
		if perr != nil {
			err = perr
			break
		}
		k.Subject, k.Issuer = leaf.Subject.String(), leaf.Issuer.String()
		k.Serial = strings.ToUpper(leaf.SerialNumber.Text(16))
		k.NotBefore = leaf.NotBefore.UTC()
		usage := smime.Encryption
		if k.Kind == SMIMESender {
			usage = smime.Signing
		}
		_, err = smime.Validate(leaf, inter, k.ValidatedAs, usage, s.opts.SMIME, now)
	}
	k.Status = "valid"
	if err != nil {
		k.Status = string(CauseMalformed)
		if c, ok := causeOf(err); ok {
			k.Status = string(c)
		}
	}
}

// Delete removes a key of the account, its sealed private key with it.
// Another account's key, or one of another kind, is store.ErrNotFound.
func (s *Service) Delete(ctx context.Context, actor account.Actor, kind Kind, id string) error {
	accountID := actor.Principal.AccountID
	return s.db.InTx(ctx, func(tx store.Tx) error {
		var fingerprint string
		if err := tx.QueryRow(ctx, `SELECT fingerprint FROM mail_keys WHERE account_id = $1 AND kind = $2 AND id = $3`,
			accountID, string(kind), id).Scan(&fingerprint); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mail_keys WHERE account_id = $1 AND kind = $2 AND id = $3`, accountID, string(kind), id); err != nil {
			return fmt.Errorf("delete key: %w", err)
		}
		return s.audit(ctx, tx, actor, kind, "deleted", id, fingerprint, false)
	})
}

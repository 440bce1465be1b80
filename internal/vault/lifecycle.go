package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/sealpost/sealpost/internal/store"
)

// Rotate adds a new primary key to the account's keyset and returns the
// new version. New ciphertexts use the new key; old ones still open, since
// tink prefixes each ciphertext with the id of the key that made it.
func (v *Vault) Rotate(ctx context.Context, accountID string) (int, error) {
	if err := v.EnsureAccountKey(ctx, accountID); err != nil {
		return 0, err
	}
	var version int
	err := v.db.InTx(ctx, func(tx store.Tx) error {
		q := "SELECT keyset, version, COALESCE(destroyed_at, 0) FROM account_keys WHERE account_id = $1"
		if tx.Dialect() == store.Postgres {
			q += " FOR UPDATE"
		}
		var wrapped []byte
		var destroyed int64
		if err := tx.QueryRow(ctx, q, accountID).Scan(&wrapped, &version, &destroyed); err != nil {
			return fmt.Errorf("read account %s keyset: %w", accountID, err)
		}
		if destroyed != 0 || wrapped == nil {
			return fmt.Errorf("account %s: %w", accountID, ErrKeysDestroyed)
		}
		h, err := v.unwrap(accountID, wrapped)
		if err != nil {
			return err
		}
		m := keyset.NewManagerFromHandle(h)
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			return fmt.Errorf("add key: %w", err)
		}
		if err := m.SetPrimary(id); err != nil {
			return fmt.Errorf("promote key: %w", err)
		}
		nh, err := m.Handle()
		if err != nil {
			return err
		}
		rewrapped, err := v.wrap(accountID, nh)
		if err != nil {
			return err
		}
		version++
		_, err = tx.Exec(ctx, "UPDATE account_keys SET keyset = $1, version = $2, rotated_at = $3 WHERE account_id = $4",
			rewrapped, version, store.Micros(v.opts.Now()), accountID)
		return err
	})
	v.forget(accountID)
	if err != nil {
		return 0, fmt.Errorf("rotate: %w", err)
	}
	return version, nil
}

// DestroyAccountKeys crypto-shreds the account: its keyset is erased and
// every ciphertext sealed for it becomes unreadable, for good. The row
// stays (keyset NULL, destroyed_at set) so no new keyset is ever created
// for the account. On SQLite the freed page is zeroed (secure_delete) and
// the WAL checkpointed and truncated so the wrapped keyset leaves the
// files; on PostgreSQL the table is vacuumed so the dead row version is
// reclaimed. Other nodes drop their cached copy within the cache TTL.
func (v *Vault) DestroyAccountKeys(ctx context.Context, accountID string) error {
	now := store.Micros(v.opts.Now())
	err := v.db.InTx(ctx, func(tx store.Tx) error {
		n, err := tx.Exec(ctx, "UPDATE account_keys SET keyset = NULL, destroyed_at = $1 WHERE account_id = $2", now, accountID)
		if err != nil || n > 0 {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO account_keys (account_id, keyset, version, created_at, rotated_at, destroyed_at)
			VALUES ($1, NULL, 0, $2, $2, $2)`, accountID, now)
		return err
	})
	v.forget(accountID)
	if err != nil {
		return fmt.Errorf("destroy account %s keys: %w", accountID, err)
	}
	return v.scrub(ctx)
}

func (v *Vault) scrub(ctx context.Context) error {
	var err error
	if v.db.Dialect() == store.SQLite {
		_, err = v.db.Writer().Exec(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	} else {
		_, err = v.db.Writer().Exec(ctx, "VACUUM account_keys")
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("scrub destroyed keyset: %w", err)
	}
	return err
}

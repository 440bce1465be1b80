package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/internal/store"
)

// PlatformSecret returns the named 32-byte secret shared by every node
// (OAuth HMAC, return-path tokens, tracking tokens, portal codes): random,
// created by the first node that needs it, and stored in
// platform_secrets sealed by the master key with associated data naming
// the row. It belongs to no account, so crypto-shredding an account does
// not change it; rotating the master key's keyset keeps it readable, and
// losing the master key loses it.
func PlatformSecret(ctx context.Context, db *store.Store, master MasterKey, name string) ([]byte, error) {
	ad := []byte("platform_secrets/" + name)
	load := func() ([]byte, error) {
		var sealed []byte
		err := db.Reader().QueryRow(ctx, "SELECT sealed FROM platform_secrets WHERE name = $1", name).Scan(&sealed)
		return sealed, err
	}
	sealed, err := load()
	if errors.Is(err, store.ErrNotFound) {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		ct, serr := master.Encrypt(fresh, ad)
		if serr != nil {
			return nil, fmt.Errorf("seal platform secret %s: %w", name, serr)
		}
		// The first node to insert wins; everyone then reads its secret.
		if _, ierr := db.Writer().Exec(ctx, "INSERT INTO platform_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
			name, ct); ierr != nil {
			return nil, fmt.Errorf("store platform secret %s: %w", name, ierr)
		}
		sealed, err = load()
	}
	if err != nil {
		return nil, fmt.Errorf("load platform secret %s: %w", name, err)
	}
	secret, err := master.Decrypt(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open platform secret %s (wrong master key?): %w", name, err)
	}
	return secret, nil
}

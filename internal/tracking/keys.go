package tracking

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// secretName names the token key in platform_secrets.
const secretName = "tracking-hmac"

// tokenKey returns the 32-byte HMAC key of tracking tokens, shared by
// every node: random, created by the first node that needs it and stored
// sealed by the master key (platform_secrets, associated data naming the
// row). It is independent of account data keys, so crypto-shredding an
// account does not change other accounts' links, and rotating the master
// key's keyset keeps it readable.
func tokenKey(ctx context.Context, db *store.Store, master vault.MasterKey) ([]byte, error) {
	ad := []byte("platform_secrets/" + secretName)
	load := func() ([]byte, error) {
		var sealed []byte
		err := db.Reader().QueryRow(ctx, "SELECT sealed FROM platform_secrets WHERE name = $1", secretName).Scan(&sealed)
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
			return nil, fmt.Errorf("seal the tracking key: %w", serr)
		}
		// The first node to insert wins; everyone then reads its key.
		if _, ierr := db.Writer().Exec(ctx, "INSERT INTO platform_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
			secretName, ct); ierr != nil {
			return nil, fmt.Errorf("store the tracking key: %w", ierr)
		}
		sealed, err = load()
	}
	if err != nil {
		return nil, fmt.Errorf("load the tracking key: %w", err)
	}
	key, err := master.Decrypt(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open the tracking key (wrong master key?): %w", err)
	}
	return key, nil
}

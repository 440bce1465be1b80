package tracking

import (
	"context"

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
	return vault.PlatformSecret(ctx, db, master, secretName)
}

// Package vault encrypts data at rest with envelope encryption: each
// account has its own tink AES-256-GCM data keyset, stored wrapped by a
// master key (a file by default; a KMS behind the MasterKey interface).
// Associated data binds every ciphertext to its account and to the
// caller's record, so a ciphertext copied elsewhere does not open. Keys
// rotate without re-encrypting (old keys stay in the keyset), and
// destroying an account's keyset makes all its ciphertexts unreadable
// (crypto-shredding). The vault stores only wrapped keys; it does not
// store the ciphertexts, which live in their owners' rows.
package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/sealpost/sealpost/internal/store"
)

// Errors callers branch on.
var (
	// ErrKeysDestroyed: the account's keys were destroyed; its data is gone.
	ErrKeysDestroyed = errors.New("vault: account keys destroyed")
	// ErrDecrypt: the ciphertext does not open with this account's keys and
	// this associated data (tampered, moved, or sealed for another record).
	ErrDecrypt = errors.New("vault: ciphertext does not open")
)

// DefaultCacheTTL bounds how long a node keeps an unwrapped keyset. A key
// destroyed on one node stops working on every node within this time.
const DefaultCacheTTL = time.Minute

// Options tunes a Vault. The zero value is usable.
type Options struct {
	// CacheTTL is how long unwrapped keysets stay in memory (default
	// DefaultCacheTTL; negative disables the cache).
	CacheTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Vault seals and opens data for accounts. Safe for concurrent use.
type Vault struct {
	db     *store.Store
	master MasterKey
	opts   Options

	mu    sync.Mutex
	cache map[string]cachedKey
}

type cachedKey struct {
	version int
	aead    tink.AEAD
	loaded  time.Time
}

// New returns a Vault over db whose account keysets are wrapped by master.
func New(db *store.Store, master MasterKey, opts Options) *Vault {
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Vault{db: db, master: master, opts: opts, cache: map[string]cachedKey{}}
}

// HasAccountKeys reports whether the store holds any wrapped keyset (or a
// record of a destroyed one): then a missing master key is an error, not a
// first start.
func HasAccountKeys(ctx context.Context, db *store.Store) (bool, error) {
	var n int
	if err := db.Reader().QueryRow(ctx, "SELECT count(*) FROM account_keys").Scan(&n); err != nil {
		return false, fmt.Errorf("count account keys: %w", err)
	}
	return n > 0, nil
}

// Seal encrypts plaintext for accountID. associatedData names the record
// the ciphertext belongs to (e.g. "messages/<id>/body") and must be given
// again to Open.
func (v *Vault) Seal(ctx context.Context, accountID string, plaintext, associatedData []byte) ([]byte, error) {
	k, err := v.key(ctx, accountID, true)
	if err != nil {
		return nil, err
	}
	ct, err := k.aead.Encrypt(plaintext, bindAD(accountID, associatedData))
	if err != nil {
		return nil, fmt.Errorf("seal for account %s: %w", accountID, err)
	}
	return ct, nil
}

// Open decrypts a ciphertext made by Seal for the same account and
// associated data.
func (v *Vault) Open(ctx context.Context, accountID string, ciphertext, associatedData []byte) ([]byte, error) {
	k, err := v.key(ctx, accountID, false)
	if err != nil {
		return nil, err
	}
	ad := bindAD(accountID, associatedData)
	pt, err := k.aead.Decrypt(ciphertext, ad)
	if err == nil {
		return pt, nil
	}
	// Another node may have rotated (or destroyed) since we cached: reload
	// once before giving up.
	v.forget(accountID)
	k, kerr := v.key(ctx, accountID, false)
	if kerr != nil {
		return nil, kerr
	}
	if pt, err = k.aead.Decrypt(ciphertext, ad); err != nil {
		return nil, fmt.Errorf("open for account %s: %w", accountID, ErrDecrypt)
	}
	return pt, nil
}

// EnsureAccountKey creates the account's data keyset if it has none.
func (v *Vault) EnsureAccountKey(ctx context.Context, accountID string) error {
	_, err := v.key(ctx, accountID, true)
	return err
}

// bindAD prefixes the caller's associated data with a domain tag and the
// account id, each length-prefixed so no two (account, ad) pairs collide.
func bindAD(accountID string, ad []byte) []byte {
	var b bytes.Buffer
	for _, part := range [][]byte{[]byte("sealpost/vault/v1"), []byte(accountID), ad} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		b.Write(n[:])
		b.Write(part)
	}
	return b.Bytes()
}

// keysetAD binds a wrapped keyset to its account: a keyset row copied to
// another account does not unwrap.
func keysetAD(accountID string) []byte {
	return []byte("sealpost/account-keyset/v1/" + accountID)
}

func (v *Vault) key(ctx context.Context, accountID string, create bool) (cachedKey, error) {
	if k, ok := v.cached(accountID); ok {
		return k, nil
	}
	k, err := v.load(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		if !create {
			return cachedKey{}, fmt.Errorf("open for account %s: %w", accountID, ErrDecrypt)
		}
		if err := v.create(ctx, accountID); err != nil {
			return cachedKey{}, err
		}
		k, err = v.load(ctx, accountID)
	}
	if err != nil {
		return cachedKey{}, err
	}
	v.remember(accountID, k)
	return k, nil
}

func (v *Vault) load(ctx context.Context, accountID string) (cachedKey, error) {
	var wrapped []byte
	var version int
	var destroyed int64
	err := v.db.Reader().QueryRow(ctx,
		"SELECT keyset, version, COALESCE(destroyed_at, 0) FROM account_keys WHERE account_id = $1", accountID).
		Scan(&wrapped, &version, &destroyed)
	if err != nil {
		return cachedKey{}, err
	}
	if destroyed != 0 || wrapped == nil {
		return cachedKey{}, fmt.Errorf("account %s: %w", accountID, ErrKeysDestroyed)
	}
	h, err := v.unwrap(accountID, wrapped)
	if err != nil {
		return cachedKey{}, err
	}
	a, err := aead.New(h)
	if err != nil {
		return cachedKey{}, fmt.Errorf("account %s keyset: %w", accountID, err)
	}
	return cachedKey{version: version, aead: a, loaded: v.opts.Now()}, nil
}

func (v *Vault) unwrap(accountID string, wrapped []byte) (*keyset.Handle, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), v.master, keysetAD(accountID))
	if err != nil {
		return nil, fmt.Errorf("unwrap account %s keyset (wrong master key?): %w", accountID, ErrDecrypt)
	}
	return h, nil
}

func (v *Vault) wrap(accountID string, h *keyset.Handle) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), v.master, keysetAD(accountID)); err != nil {
		return nil, fmt.Errorf("wrap account %s keyset: %w", accountID, err)
	}
	return buf.Bytes(), nil
}

// create inserts a new keyset unless one exists: concurrent first Seals
// (on any node) end with exactly one keyset, the first inserted.
func (v *Vault) create(ctx context.Context, accountID string) error {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return fmt.Errorf("generate account keyset: %w", err)
	}
	wrapped, err := v.wrap(accountID, h)
	if err != nil {
		return err
	}
	now := store.Micros(v.opts.Now())
	_, err = v.db.Writer().Exec(ctx, `INSERT INTO account_keys (account_id, keyset, version, created_at, rotated_at)
		VALUES ($1, $2, 1, $3, $3) ON CONFLICT (account_id) DO NOTHING`, accountID, wrapped, now)
	if err != nil {
		return fmt.Errorf("store account %s keyset: %w", accountID, err)
	}
	return nil
}

func (v *Vault) cached(accountID string) (cachedKey, bool) {
	if v.opts.CacheTTL < 0 {
		return cachedKey{}, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.cache[accountID]
	if !ok || v.opts.Now().Sub(k.loaded) > v.opts.CacheTTL {
		delete(v.cache, accountID)
		return cachedKey{}, false
	}
	return k, true
}

func (v *Vault) remember(accountID string, k cachedKey) {
	if v.opts.CacheTTL < 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cache[accountID] = k
}

func (v *Vault) forget(accountID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.cache, accountID)
}

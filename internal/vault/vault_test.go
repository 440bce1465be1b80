package vault_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

func newVault(t *testing.T, s *store.Store, accounts ...string) (*vault.Vault, string) {
	t.Helper()
	keyPath := filepath.Join(t.TempDir(), "master.key")
	mk, err := vault.LoadOrCreateFileMasterKey(keyPath, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if _, err := s.Writer().Exec(context.Background(), "INSERT INTO accounts (id, name, created_at) VALUES ($1, $1, 0)", a); err != nil {
			t.Fatal(err)
		}
	}
	return vault.New(s, mk, vault.Options{}), keyPath
}

func TestSealOpenAndBinding(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v, _ := newVault(t, s, "acct-a", "acct-b")
		msg := []byte("Lab result for Jane Doe: HbA1c 6.1%")
		ad := []byte("messages/m1/body")
		ct, err := v.Seal(ctx, "acct-a", msg, ad)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct, msg) {
			t.Fatal("ciphertext contains the plaintext")
		}
		got, err := v.Open(ctx, "acct-a", ct, ad)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("open: %q %v", got, err)
		}
		// Moving the ciphertext anywhere else fails to open.
		tampered := bytes.Clone(ct)
		tampered[len(tampered)-1] ^= 1
		cases := []struct {
			name    string
			account string
			ct      []byte
			ad      []byte
		}{
			{"other record", "acct-a", ct, []byte("messages/m2/body")},
			{"other account", "acct-b", ct, ad},
			{"flipped bit", "acct-a", tampered, ad},
			{"empty ad", "acct-a", ct, nil},
		}
		for _, c := range cases {
			if _, err := v.Open(ctx, c.account, c.ct, c.ad); !errors.Is(err, vault.ErrDecrypt) {
				t.Errorf("%s: got %v, want ErrDecrypt", c.name, err)
			}
		}
	})
}

func TestRotationKeepsOldCiphertextsReadable(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v, _ := newVault(t, s, "acct-a")
		old, err := v.Seal(ctx, "acct-a", []byte("before"), []byte("r/1"))
		if err != nil {
			t.Fatal(err)
		}
		version, err := v.Rotate(ctx, "acct-a")
		if err != nil || version != 2 {
			t.Fatalf("rotate: version %d, %v", version, err)
		}
		fresh, err := v.Seal(ctx, "acct-a", []byte("after"), []byte("r/2"))
		if err != nil {
			t.Fatal(err)
		}
		// Tink prefixes ciphertexts with 0x01 and the 4-byte key id.
		if binary.BigEndian.Uint32(old[1:5]) == binary.BigEndian.Uint32(fresh[1:5]) {
			t.Fatal("new ciphertext made with the old key")
		}
		for _, c := range []struct {
			ct   []byte
			ad   string
			want string
		}{{old, "r/1", "before"}, {fresh, "r/2", "after"}} {
			got, err := v.Open(ctx, "acct-a", c.ct, []byte(c.ad))
			if err != nil || string(got) != c.want {
				t.Fatalf("open after rotation: %q %v", got, err)
			}
		}
	})
}

func TestDestroyedKeysShredTheAccountForGood(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v, keyPath := newVault(t, s, "acct-a", "acct-b")
		ct, err := v.Seal(ctx, "acct-a", []byte("phi"), []byte("r/1"))
		if err != nil {
			t.Fatal(err)
		}
		other, err := v.Seal(ctx, "acct-b", []byte("kept"), []byte("r/1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.DestroyAccountKeys(ctx, "acct-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Open(ctx, "acct-a", ct, []byte("r/1")); !errors.Is(err, vault.ErrKeysDestroyed) {
			t.Fatalf("open after destroy: %v", err)
		}
		if _, err := v.Seal(ctx, "acct-a", []byte("new"), []byte("r/2")); !errors.Is(err, vault.ErrKeysDestroyed) {
			t.Fatalf("seal after destroy: %v", err)
		}
		// A restart (new vault, same master key and store) cannot either.
		mk, err := vault.LoadOrCreateFileMasterKey(keyPath, false)
		if err != nil {
			t.Fatal(err)
		}
		v2 := vault.New(s, mk, vault.Options{})
		if _, err := v2.Open(ctx, "acct-a", ct, []byte("r/1")); !errors.Is(err, vault.ErrKeysDestroyed) {
			t.Fatalf("open after restart: %v", err)
		}
		if got, err := v2.Open(ctx, "acct-b", other, []byte("r/1")); err != nil || string(got) != "kept" {
			t.Fatalf("other account affected: %q %v", got, err)
		}
	})
}

func TestAnotherMasterKeyCannotUnwrap(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v, _ := newVault(t, s, "acct-a")
		ct, err := v.Seal(ctx, "acct-a", []byte("phi"), []byte("r/1"))
		if err != nil {
			t.Fatal(err)
		}
		other, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "other.key"), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vault.New(s, other, vault.Options{}).Open(ctx, "acct-a", ct, []byte("r/1")); !errors.Is(err, vault.ErrDecrypt) {
			t.Fatalf("foreign master key: %v", err)
		}
	})
}

func TestConcurrentFirstSealsCreateOneKeyset(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		keyPath := filepath.Join(t.TempDir(), "master.key")
		mk, err := vault.LoadOrCreateFileMasterKey(keyPath, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Writer().Exec(ctx, "INSERT INTO accounts (id, name, created_at) VALUES ('acct-a', 'a', 0)"); err != nil {
			t.Fatal(err)
		}
		// Separate vaults stand in for separate nodes (no shared cache).
		cts := make([][]byte, 6)
		var wg sync.WaitGroup
		for i := range cts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ct, err := vault.New(s, mk, vault.Options{}).Seal(ctx, "acct-a", []byte("x"), []byte("r"))
				if err != nil {
					t.Error(err)
				}
				cts[i] = ct
			}()
		}
		wg.Wait()
		var n int
		if err := s.Reader().QueryRow(ctx, "SELECT count(*) FROM account_keys").Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d keysets (%v)", n, err)
		}
		v := vault.New(s, mk, vault.Options{})
		for i, ct := range cts {
			if _, err := v.Open(ctx, "acct-a", ct, []byte("r")); err != nil {
				t.Errorf("ciphertext %d does not open: %v", i, err)
			}
		}
	})
}

func TestMasterKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "master.key")
	if _, err := vault.LoadOrCreateFileMasterKey(path, false); !errors.Is(err, vault.ErrMasterKeyMissing) {
		t.Fatalf("absent, not allowed: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("key created although not allowed")
	}
	mk, err := vault.LoadOrCreateFileMasterKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v)", st.Mode().Perm(), err)
	}
	ct, _ := mk.Encrypt([]byte("x"), []byte("ad"))
	again, err := vault.LoadOrCreateFileMasterKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Decrypt(ct, []byte("ad")); err != nil || string(pt) != "x" {
		t.Fatal("reloaded key differs from the created one")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.LoadOrCreateFileMasterKey(path, true); err == nil {
		t.Fatal("world-readable key accepted")
	}
	if err := os.WriteFile(path, []byte("not a keyset"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.LoadOrCreateFileMasterKey(path, true); err == nil {
		t.Fatal("garbage key file accepted")
	}
}

// TestCanaryNeverReachesTheDisk seals a marker, stores the ciphertext in a
// real SQLite file, and searches the raw database, WAL and shared-memory
// files for it. A control row stored in clear must be found, so the search
// itself is proven to work.
func TestCanaryNeverReachesTheDisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.URL(t, store.SQLite)
	s, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx, store.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	v, keyPath := newVault(t, s, "acct-a")
	var r [16]byte
	_, _ = rand.Read(r[:])
	canary := "CANARY-" + hex.EncodeToString(r[:])
	control := "CONTROL-" + hex.EncodeToString(r[:])
	if _, err := s.Writer().Exec(ctx, "CREATE TABLE phi (id TEXT PRIMARY KEY, body BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	ct, err := v.Seal(ctx, "acct-a", []byte(canary), []byte("phi/1/body"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer().Exec(ctx, "INSERT INTO phi (id, body) VALUES ('1', $1), ('2', $2)", ct, []byte(control)); err != nil {
		t.Fatal(err)
	}
	rawKey := masterKeyMaterial(t, keyPath)

	disk := readDBFiles(t, store.SQLitePath(url))
	if !bytes.Contains(disk, []byte(control)) {
		t.Fatal("control marker not found on disk: the search is blind")
	}
	if bytes.Contains(disk, []byte(canary)) {
		t.Fatal("sealed canary found in clear in the database files")
	}
	if bytes.Contains(disk, rawKey) {
		t.Fatal("master key material found in the database files")
	}
	// After crypto-shredding the wrapped keyset leaves the files too.
	var wrapped []byte
	if err := s.Reader().QueryRow(ctx, "SELECT keyset FROM account_keys WHERE account_id = 'acct-a'").Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readDBFiles(t, store.SQLitePath(url)), wrapped) {
		t.Fatal("wrapped keyset not found on disk before destroy: the search is blind")
	}
	if err := v.DestroyAccountKeys(ctx, "acct-a"); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(readDBFiles(t, store.SQLitePath(url)), wrapped) {
		t.Fatal("destroyed keyset still present in the database files")
	}
}

func readDBFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// masterKeyMaterial digs the raw 32-byte AES key out of the cleartext
// keyset file: the JSON holds it base64 inside a serialized proto whose
// last field is the key bytes.
func masterKeyMaterial(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ks := masterKeyValue(t, raw)
	if len(ks) < 32 {
		t.Fatalf("key value %d bytes", len(ks))
	}
	return ks[len(ks)-32:]
}

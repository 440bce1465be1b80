package vault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// ErrMasterKeyMissing: the master key file does not exist and creating
// one was not allowed (the store already holds keys it wrapped).
var ErrMasterKeyMissing = errors.New("vault: master key file missing")

// MasterKey wraps and unwraps account data keysets. The file
// implementation below is the default; a KMS (AWS KMS, GCP KMS, Vault
// Transit, an HSM) implements the same two calls.
type MasterKey interface {
	tink.AEAD
}

// LoadOrCreateFileMasterKey loads the tink AES-256-GCM keyset stored in
// path. When the file is absent it creates one (0600, directory 0700,
// written atomically) if allowCreate, else returns ErrMasterKeyMissing. A
// key file readable by group or others is refused: it is the one secret
// that opens every account's data.
func LoadOrCreateFileMasterKey(path string, allowCreate bool) (MasterKey, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if !allowCreate {
			return nil, fmt.Errorf("%w: %s", ErrMasterKeyMissing, path)
		}
		return createMasterKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key %s: mode %04o lets others read it; chmod 600", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("master key %s: not a tink keyset", path)
	}
	return masterFromHandle(h, path)
}

func createMasterKey(path string) (MasterKey, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, fmt.Errorf("encode master key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("master key directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write master key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// Link rather than rename so two processes racing to create the key
	// cannot both succeed: the loser loads the winner's key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateFileMasterKey(path, false)
		}
		return nil, fmt.Errorf("install master key %s: %w", path, err)
	}
	return masterFromHandle(h, path)
}

func masterFromHandle(h *keyset.Handle, path string) (MasterKey, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	return a, nil
}

package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// VaultSeal measures messages of size bytes sealed per second for one
// account (the keyset cached, as in steady state).
func VaultSeal(ctx context.Context, s *store.Store, n, size int) (Result, error) {
	dir, err := os.MkdirTemp("", "sealpost-bench-key-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(dir, "master.key"), true)
	if err != nil {
		return Result{}, err
	}
	if _, err := s.Writer().Exec(ctx, "INSERT INTO accounts (id, name, created_at) VALUES ('bench-vault', 'bench', 0)"); err != nil {
		return Result{}, err
	}
	v := vault.New(s, mk, vault.Options{})
	msg := make([]byte, size)
	_, _ = rand.Read(msg)
	if err := v.EnsureAccountKey(ctx, "bench-vault"); err != nil {
		return Result{}, err
	}
	start := time.Now()
	for i := range n {
		if _, err := v.Seal(ctx, "bench-vault", msg, fmt.Appendf(nil, "messages/%d/body", i)); err != nil {
			return Result{}, err
		}
	}
	return Result{Name: fmt.Sprintf("vault.seal.%dB", size), Dialect: string(s.Dialect()), Ops: n, Elapsed: time.Since(start)}, nil
}

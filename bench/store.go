package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

const benchTable = `CREATE TABLE IF NOT EXISTS bench_rows (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
)`

// StoreInsert measures rows inserted per second, batch rows per
// transaction (1 = one insert and commit per row, the worst case of a
// request-per-transaction API; 1,000 = group commit). Rows are ~200 bytes,
// the size of a small message envelope.
func StoreInsert(ctx context.Context, s *store.Store, n, batch int, progress Progress) (Result, error) {
	if batch < 1 {
		batch = 1
	}
	if _, err := s.Writer().Exec(ctx, benchTable); err != nil {
		return Result{}, fmt.Errorf("create bench table: %w", err)
	}
	payload := strings.Repeat("x", 200)
	name := fmt.Sprintf("store.insert.batch%d", batch)
	start := time.Now()
	for done := 0; done < n; {
		size := min(batch, n-done)
		err := s.InTx(ctx, func(tx store.Tx) error {
			q, args := multiRowInsert(size, payload)
			_, err := tx.Exec(ctx, q, args...)
			return err
		})
		if err != nil {
			return Result{}, fmt.Errorf("insert: %w", err)
		}
		done += size
		if progress != nil {
			progress(name, done, n)
		}
	}
	return Result{Name: name, Dialect: string(s.Dialect()), Ops: n, Elapsed: time.Since(start)}, nil
}

// multiRowInsert builds one INSERT of size rows. SQLite allows 32,766
// bound parameters per statement and PostgreSQL 65,535; batches larger
// than 8,000 rows would need splitting.
func multiRowInsert(size int, payload string) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO bench_rows (id, account_id, payload, created_at) VALUES ")
	args := make([]any, 0, size*4)
	now := store.Micros(time.Now())
	for i := range size {
		if i > 0 {
			b.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
		args = append(args, store.NewID(), "bench-account", payload, now)
	}
	return b.String(), args
}

// Package store is the repository layer's foundation: it opens the
// database named by a URL (SQLite through modernc.org/sqlite or PostgreSQL
// through pgx), hides the differences behind one small Querier interface,
// runs transactions and applies the ordered, per-dialect migrations. It does
// not hold domain queries; each domain package keeps its own SQL next to its
// code and runs it through a Querier.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Dialect names the SQL dialect of a store.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Querier runs SQL. Queries use $1, $2 ... placeholders on both dialects.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query returning rows; the caller must Close them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a query expected to return at most one row; Scan
	// returns ErrNotFound when it returned none.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows is a result set being iterated.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is a single-row result.
type Row interface {
	Scan(dest ...any) error
}

// Tx is a Querier inside a transaction. Raw exposes the driver's
// transaction (*sql.Tx on SQLite, pgx.Tx on PostgreSQL) so the job queue
// can insert jobs in the same transaction as the rows they concern.
type Tx interface {
	Querier
	Dialect() Dialect
	Raw() any
}

// Options tunes connection pools. The zero value is usable.
type Options struct {
	// MaxConns bounds the PostgreSQL pool (default 10).
	MaxConns int
	// SQLiteReaders is the size of the SQLite reader pool (default 4).
	SQLiteReaders int
	// BusyTimeout is how long a SQLite connection waits for a lock
	// (default 5s).
	BusyTimeout time.Duration
}

// Store is an open database. It is safe for concurrent use.
type Store struct {
	dialect Dialect
	url     string

	// SQLite: one writer connection, a pool of read-only readers.
	writer *sql.DB
	reader *sql.DB

	// PostgreSQL: one pool serves both.
	pool *pgxpool.Pool
}

// Open connects to the database named by url: "sqlite:PATH" (also
// "sqlite://PATH", "sqlite:///abs/path") or "postgres://..." /
// "postgresql://...". It verifies the database answers but applies no
// migrations; call Migrate for that.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.MaxConns <= 0 {
		opts.MaxConns = 10
	}
	if opts.SQLiteReaders <= 0 {
		opts.SQLiteReaders = 4
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		return openSQLite(ctx, SQLitePath(url), opts)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url, opts)
	default:
		return nil, fmt.Errorf("open store: database url must start with sqlite: or postgres:// (got scheme %q)", scheme(url))
	}
}

// SQLitePath returns the file path of a sqlite: URL.
func SQLitePath(url string) string {
	p := strings.TrimPrefix(url, "sqlite:")
	if strings.HasPrefix(p, "//") {
		p = strings.TrimPrefix(p, "//")
	}
	return p
}

func scheme(url string) string {
	if i := strings.Index(url, ":"); i > 0 && i < 20 {
		return url[:i]
	}
	return ""
}

// Dialect returns the store's SQL dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Writer returns a Querier for statements outside a transaction. On SQLite
// it is the single writer connection.
func (s *Store) Writer() Querier {
	if s.dialect == SQLite {
		return sqlQuerier{s.writer}
	}
	return pgxQuerier{s.pool}
}

// Reader returns a Querier for read-only queries. On SQLite it is the
// reader pool, which sees every committed write (WAL).
func (s *Store) Reader() Querier {
	if s.dialect == SQLite {
		return sqlQuerier{s.reader}
	}
	return pgxQuerier{s.pool}
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise. On SQLite the transaction takes the write lock at BEGIN
// (BEGIN IMMEDIATE) so it cannot fail half-way on lock upgrade.
func (s *Store) InTx(ctx context.Context, fn func(Tx) error) error {
	if s.dialect == SQLite {
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin: %w", mapError(err))
		}
		if err := fn(sqlTx{tx}); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", mapError(err))
		}
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", mapError(err))
	}
	if err := fn(pgxTx{tx}); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", mapError(err))
	}
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.Reader().QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping %s store: %w", s.dialect, err)
	}
	return nil
}

// SQLiteDB returns the SQLite writer pool (one connection), for the job
// queue's driver. It is nil on PostgreSQL.
func (s *Store) SQLiteDB() *sql.DB { return s.writer }

// PgxPool returns the PostgreSQL pool, for the job queue's driver. It is nil
// on SQLite.
func (s *Store) PgxPool() *pgxpool.Pool { return s.pool }

// Stats reports connection pool figures for metrics.
type Stats struct {
	Open, InUse, Idle int
	WaitCount         int64
}

// PoolStats returns the current pool figures, keyed by pool name
// ("writer", "reader" on SQLite; "pool" on PostgreSQL).
func (s *Store) PoolStats() map[string]Stats {
	if s.dialect == SQLite {
		out := map[string]Stats{}
		for name, db := range map[string]*sql.DB{"writer": s.writer, "reader": s.reader} {
			st := db.Stats()
			out[name] = Stats{Open: st.OpenConnections, InUse: st.InUse, Idle: st.Idle, WaitCount: st.WaitCount}
		}
		return out
	}
	st := s.pool.Stat()
	return map[string]Stats{"pool": {
		Open: int(st.TotalConns()), InUse: int(st.AcquiredConns()), Idle: int(st.IdleConns()),
		WaitCount: st.EmptyAcquireCount(),
	}}
}

// Close closes every connection.
func (s *Store) Close() error {
	if s.dialect == SQLite {
		return errors.Join(s.reader.Close(), s.writer.Close())
	}
	s.pool.Close()
	return nil
}

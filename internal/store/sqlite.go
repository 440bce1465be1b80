package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// openSQLite opens path with one writer connection and a read-only pool.
// WAL lets readers run beside the writer; synchronous=FULL makes every
// commit durable against power loss, not only against a process crash,
// because an accepted message must never be lost.
func openSQLite(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open sqlite store: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite store: create directory %s: %w", dir, err)
		}
	}
	writer, err := sql.Open("sqlite", sqliteDSN(path, opts.BusyTimeout, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// A corrupt or non-SQLite file is only detected on first read.
	var n int
	if err := writer.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("open sqlite store %s: not a readable SQLite database: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", sqliteDSN(path, opts.BusyTimeout, true))
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	reader.SetMaxOpenConns(opts.SQLiteReaders)
	reader.SetMaxIdleConns(opts.SQLiteReaders)
	return &Store{dialect: SQLite, url: "sqlite:" + path, writer: writer, reader: reader}, nil
}

func sqliteDSN(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		// Zero freed pages so deleted PHI and destroyed keys leave the file.
		q.Add("_pragma", "secure_delete(1)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// sqlExecer is what *sql.DB and *sql.Tx have in common.
type sqlExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqlQuerier struct{ db sqlExecer }

func (q sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.db.ExecContext(ctx, rebindSQLite(query), args...)
	if err != nil {
		return 0, mapError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := q.db.QueryContext(ctx, rebindSQLite(query), args...)
	if err != nil {
		return nil, mapError(err)
	}
	return sqlRows{rows}, nil
}

func (q sqlQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return sqlRow{q.db.QueryRowContext(ctx, rebindSQLite(query), args...)}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close()                 { _ = r.Rows.Close() }
func (r sqlRows) Scan(dest ...any) error { return mapError(r.Rows.Scan(dest...)) }

type sqlRow struct{ row *sql.Row }

func (r sqlRow) Scan(dest ...any) error { return mapError(r.row.Scan(dest...)) }

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlQuerier{t.tx}.Exec(ctx, query, args...)
}

func (t sqlTx) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return sqlQuerier{t.tx}.Query(ctx, query, args...)
}

func (t sqlTx) QueryRow(ctx context.Context, query string, args ...any) Row {
	return sqlQuerier{t.tx}.QueryRow(ctx, query, args...)
}

func (t sqlTx) Dialect() Dialect { return SQLite }
func (t sqlTx) Raw() any         { return t.tx }

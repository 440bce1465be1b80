package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func openPostgres(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse error can echo the URL, password included.
		return nil, fmt.Errorf("open postgres store: invalid database url")
	}
	cfg.MaxConns = int32(opts.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return &Store{dialect: Postgres, url: url, pool: pool}, nil
}

// pgxExecer is what *pgxpool.Pool and pgx.Tx have in common.
type pgxExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgxQuerier struct{ db pgxExecer }

func (q pgxQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.db.Exec(ctx, query, args...)
	if err != nil {
		return 0, mapError(err)
	}
	return tag.RowsAffected(), nil
}

func (q pgxQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := q.db.Query(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	return pgxRows{rows}, nil
}

func (q pgxQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return pgxRow{q.db.QueryRow(ctx, query, args...)}
}

type pgxRows struct{ pgx.Rows }

func (r pgxRows) Scan(dest ...any) error { return mapError(r.Rows.Scan(dest...)) }
func (r pgxRows) Err() error             { return mapError(r.Rows.Err()) }

type pgxRow struct{ row pgx.Row }

func (r pgxRow) Scan(dest ...any) error { return mapError(r.row.Scan(dest...)) }

type pgxTx struct{ tx pgx.Tx }

func (t pgxTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return pgxQuerier{t.tx}.Exec(ctx, query, args...)
}

func (t pgxTx) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return pgxQuerier{t.tx}.Query(ctx, query, args...)
}

func (t pgxTx) QueryRow(ctx context.Context, query string, args ...any) Row {
	return pgxQuerier{t.tx}.QueryRow(ctx, query, args...)
}

func (t pgxTx) Dialect() Dialect { return Postgres }
func (t pgxTx) Raw() any         { return t.tx }

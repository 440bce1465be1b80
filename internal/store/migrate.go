package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// Migration is one ordered schema step of a dialect.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the dialect's migrations in order. File names are
// NNNN_name.sql; the number is the version.
func Migrations(d Dialect) ([]Migration, error) {
	dir := "migrations/" + string(d)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", d, err)
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		body, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("%s migrations: version %d missing or duplicated", d, i+1)
		}
	}
	return out, nil
}

const createSchemaTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)`

// MigrateOptions tunes Migrate. The zero value applies everything quietly.
type MigrateOptions struct {
	// Progress, when set, is called after each migration is applied.
	Progress func(m Migration, took time.Duration)
}

// Migrate applies every pending migration, each in its own transaction
// together with its schema_migrations row, so a failure leaves the
// database at the last complete version. It is idempotent and safe to run
// from several nodes at once (PostgreSQL serialises them with an advisory
// lock; SQLite with its write lock). It refuses a database migrated by a
// newer binary and a database that holds someone else's tables.
func (s *Store) Migrate(ctx context.Context, opts MigrateOptions) (applied int, err error) {
	migs, err := Migrations(s.dialect)
	if err != nil {
		return 0, err
	}
	if err := s.checkForeign(ctx); err != nil {
		return 0, err
	}
	if _, err := s.Writer().Exec(ctx, createSchemaTable); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range migs {
		start := time.Now()
		did, err := s.applyOne(ctx, m, len(migs))
		if err != nil {
			return applied, err
		}
		if did {
			applied++
			if opts.Progress != nil {
				opts.Progress(m, time.Since(start))
			}
		}
	}
	return applied, nil
}

func (s *Store) applyOne(ctx context.Context, m Migration, latest int) (bool, error) {
	did := false
	err := s.InTx(ctx, func(tx Tx) error {
		if s.dialect == Postgres {
			// One migrator at a time across nodes; released at commit.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7413020001)"); err != nil {
				return fmt.Errorf("lock migrations: %w", err)
			}
		}
		cur, err := currentVersion(ctx, tx)
		if err != nil {
			return err
		}
		if cur > latest {
			return fmt.Errorf("%w: database at version %d, this binary knows %d", ErrSchemaTooNew, cur, latest)
		}
		if cur >= m.Version {
			return nil
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
			m.Version, m.Name, Micros(time.Now())); err != nil {
			return fmt.Errorf("record migration %04d: %w", m.Version, err)
		}
		did = true
		return nil
	})
	return did, err
}

func currentVersion(ctx context.Context, q Querier) (int, error) {
	var v int
	if err := q.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// SchemaVersion returns the applied and the latest known versions.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	migs, err := Migrations(s.dialect)
	if err != nil {
		return 0, 0, err
	}
	exists, err := s.tableExists(ctx, "schema_migrations")
	if err != nil {
		return 0, 0, err
	}
	if !exists {
		return 0, len(migs), nil
	}
	cur, err := currentVersion(ctx, s.Reader())
	return cur, len(migs), err
}

// CheckSchema returns nil when the schema is exactly current, for /readyz.
func (s *Store) CheckSchema(ctx context.Context) error {
	cur, latest, err := s.SchemaVersion(ctx)
	switch {
	case err != nil:
		return err
	case cur > latest:
		return fmt.Errorf("%w: database at version %d, this binary knows %d", ErrSchemaTooNew, cur, latest)
	case cur < latest:
		return fmt.Errorf("store: %d migrations pending (at %d of %d)", latest-cur, cur, latest)
	}
	return nil
}

// checkForeign refuses a database that has tables but no schema_migrations:
// migrating it would mix our schema into someone else's data.
func (s *Store) checkForeign(ctx context.Context) error {
	ours, err := s.tableExists(ctx, "schema_migrations")
	if err != nil || ours {
		return err
	}
	var q string
	if s.dialect == SQLite {
		q = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	} else {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
	}
	var n int
	if err := s.Reader().QueryRow(ctx, q).Scan(&n); err != nil {
		return fmt.Errorf("inspect database: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: it has %d tables and no schema_migrations table", ErrForeignDatabase, n)
	}
	return nil
}

func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	var q string
	if s.dialect == SQLite {
		q = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
	} else {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
	}
	var n int
	if err := s.Reader().QueryRow(ctx, q, name).Scan(&n); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("inspect database: %w", err)
	}
	return n > 0, nil
}

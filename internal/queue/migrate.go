package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/sealpost/sealpost/internal/store"
)

// ErrNotMigrated: River's schema lacks migrations this binary needs.
var ErrNotMigrated = errors.New("queue: River schema not migrated")

// migrateLockKey is the PostgreSQL advisory lock that serialises River
// migrations across nodes (the store's own migrations use 7413020001).
const migrateLockKey int64 = 7413020002

// Queries on River's migration table, which records the River schema
// versions applied (line "main" is River's core schema).
const (
	sqliteRiverMigrationExists   = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'river_migration'`
	postgresRiverMigrationExists = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'river_migration'`
	riverVersionsQuery           = `SELECT version FROM river_migration WHERE line = 'main' ORDER BY version`
)

// migrator is what this package uses of rivermigrate.Migrator, whatever
// its transaction type.
type migrator interface {
	AllVersions() []rivermigrate.Migration
	Migrate(ctx context.Context, direction rivermigrate.Direction, opts *rivermigrate.MigrateOpts) (*rivermigrate.MigrateResult, error)
}

func newMigrator(s *store.Store) (migrator, error) {
	cfg := &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)}
	switch s.Dialect() {
	case store.SQLite:
		return rivermigrate.New(riversqlite.New(s.SQLiteDB()), cfg)
	case store.Postgres:
		return rivermigrate.New(riverpgxv5.New(s.PgxPool()), cfg)
	default:
		return nil, fmt.Errorf("queue: unsupported store dialect %q", s.Dialect())
	}
}

// Migrate applies River's pending migrations for the store's dialect, each
// in its own transaction, calling progress (when not nil) after each with
// the version applied. It is idempotent; on PostgreSQL concurrent callers
// wait for each other. Apply the store's own migrations first: the store
// refuses to migrate a database that already holds someone's tables. It
// refuses a River schema migrated by a newer binary (store.ErrSchemaTooNew).
func Migrate(ctx context.Context, s *store.Store, progress func(version int)) error {
	cur, _, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	if cur == 0 {
		return errors.New("queue: migrate: the store schema is missing; apply the store migrations first")
	}
	m, err := newMigrator(s)
	if err != nil {
		return err
	}
	unlock, err := lockMigrations(ctx, s)
	if err != nil {
		return err
	}
	defer unlock()

	applied, err := appliedVersions(ctx, s)
	if err != nil {
		return err
	}
	if err := compareVersions(m.AllVersions(), applied); err != nil && !errors.Is(err, ErrNotMigrated) {
		return err
	}
	// One step at a time so progress is reported as each lands.
	for {
		res, err := m.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{MaxSteps: 1})
		if err != nil {
			return fmt.Errorf("queue: migrate River schema: %w", err)
		}
		if len(res.Versions) == 0 {
			return nil
		}
		if progress != nil {
			for _, v := range res.Versions {
				progress(v.Version)
			}
		}
	}
}

// CheckMigrated returns nil when River's schema has exactly the versions
// this binary knows, for /readyz: ErrNotMigrated when some are missing,
// store.ErrSchemaTooNew when a newer binary migrated it. It reads through
// the store's reader.
func CheckMigrated(ctx context.Context, s *store.Store) error {
	m, err := newMigrator(s)
	if err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, s)
	if err != nil {
		return err
	}
	return compareVersions(m.AllVersions(), applied)
}

func compareVersions(known []rivermigrate.Migration, applied []int) error {
	var missing []int
	for _, m := range known {
		if !slices.Contains(applied, m.Version) {
			missing = append(missing, m.Version)
		}
	}
	for _, v := range applied {
		if !slices.ContainsFunc(known, func(m rivermigrate.Migration) bool { return m.Version == v }) {
			return fmt.Errorf("%w: River schema version %d is unknown to this binary (latest %d)",
				store.ErrSchemaTooNew, v, known[len(known)-1].Version)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: versions %v pending", ErrNotMigrated, missing)
	}
	return nil
}

// appliedVersions lists River's applied versions; none before the first
// migration.
func appliedVersions(ctx context.Context, s *store.Store) ([]int, error) {
	exists := sqliteRiverMigrationExists
	if s.Dialect() == store.Postgres {
		exists = postgresRiverMigrationExists
	}
	var n int
	if err := s.Reader().QueryRow(ctx, exists).Scan(&n); err != nil {
		return nil, fmt.Errorf("queue: read River schema version: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := s.Reader().Query(ctx, riverVersionsQuery)
	if err != nil {
		return nil, fmt.Errorf("queue: read River schema version: %w", err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("queue: read River schema version: %w", err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: read River schema version: %w", err)
	}
	return versions, nil
}

// lockMigrations serialises migrators across PostgreSQL nodes with a
// session advisory lock held on a connection of its own while River's
// migrator works on others. On SQLite each migration's transaction holds
// the database's write lock, which is enough for the single node.
func lockMigrations(ctx context.Context, s *store.Store) (unlock func(), err error) {
	if s.Dialect() != store.Postgres {
		return func() {}, nil
	}
	conn, err := s.PgxPool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: lock migrations: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		conn.Release()
		return nil, fmt.Errorf("queue: lock migrations: %w", err)
	}
	return func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrateLockKey); err != nil {
			// Closing the session releases its locks.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

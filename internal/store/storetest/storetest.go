// Package storetest runs one test against every store dialect: SQLite
// always, PostgreSQL when SEALPOST_TEST_POSTGRES holds a URL. Each test gets
// a fresh, migrated database of its own (a new SQLite file; a new
// PostgreSQL database dropped at cleanup), so tests may run in parallel and
// never see each other's rows.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/internal/store"
)

// PostgresEnv is the environment variable holding the PostgreSQL URL.
const PostgresEnv = "SEALPOST_TEST_POSTGRES"

// Each runs fn as a subtest per available dialect with a fresh migrated
// store.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Dialects lists the dialects this run tests: SQLite, plus PostgreSQL
// when SEALPOST_TEST_POSTGRES is set.
func Dialects() []store.Dialect {
	ds := []store.Dialect{store.SQLite}
	if os.Getenv(PostgresEnv) != "" {
		ds = append(ds, store.Postgres)
	}
	return ds
}

// Open returns a fresh migrated store of dialect d, closed at cleanup.
func Open(t testing.TB, d store.Dialect) *store.Store {
	t.Helper()
	s := OpenEmpty(t, d)
	if _, err := s.Migrate(context.Background(), store.MigrateOptions{}); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return s
}

// OpenEmpty returns a fresh store of dialect d with no migrations applied.
func OpenEmpty(t testing.TB, d store.Dialect) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), URL(t, d), store.Options{})
	if err != nil {
		t.Fatalf("open %s store: %v", d, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// URL returns the URL of a fresh, empty database of dialect d, removed at
// cleanup. Several stores may be opened on it (to simulate restarts).
func URL(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "sealpost.db")
	}
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("%s not set: skipping PostgreSQL", PostgresEnv)
	}
	return freshPostgres(t, base)
}

func freshPostgres(t testing.TB, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", PostgresEnv, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sealpost_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

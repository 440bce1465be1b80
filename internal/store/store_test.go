package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestMigrateIsIdempotentAndRecorded(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.OpenEmpty(t, d)
			migs, err := store.Migrations(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CheckSchema(ctx); err == nil {
				t.Fatal("CheckSchema on an empty database: want pending error")
			}
			var progressed []int
			n, err := s.Migrate(ctx, store.MigrateOptions{Progress: func(m store.Migration, _ time.Duration) {
				progressed = append(progressed, m.Version)
			}})
			if err != nil {
				t.Fatalf("first migrate: %v", err)
			}
			if n != len(migs) || len(progressed) != len(migs) {
				t.Fatalf("applied %d (progress %v), want %d", n, progressed, len(migs))
			}
			n, err = s.Migrate(ctx, store.MigrateOptions{})
			if err != nil || n != 0 {
				t.Fatalf("second migrate applied %d (err %v), want 0", n, err)
			}
			cur, latest, err := s.SchemaVersion(ctx)
			if err != nil || cur != latest || cur != len(migs) {
				t.Fatalf("schema version %d/%d err %v", cur, latest, err)
			}
			if err := s.CheckSchema(ctx); err != nil {
				t.Fatalf("CheckSchema: %v", err)
			}
		})
	}
}

func TestMigrationsAreTheSameSetOnBothDialects(t *testing.T) {
	t.Parallel()
	lite, err := store.Migrations(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := store.Migrations(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Name != pg[i].Name {
			t.Errorf("migration %d: sqlite %q, postgres %q", i+1, lite[i].Name, pg[i].Name)
		}
	}
}

func TestNewerSchemaIsRefusedAndUnchanged(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.Writer().Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx, store.MigrateOptions{}); !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("Migrate: got %v, want ErrSchemaTooNew", err)
		}
		if err := s.CheckSchema(ctx); !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("CheckSchema: got %v, want ErrSchemaTooNew", err)
		}
	})
}

func TestForeignDatabaseIsRefused(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.OpenEmpty(t, d)
			if _, err := s.Writer().Exec(ctx, "CREATE TABLE patients (name TEXT)"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Migrate(ctx, store.MigrateOptions{}); !errors.Is(err, store.ErrForeignDatabase) {
				t.Fatalf("got %v, want ErrForeignDatabase", err)
			}
			var n int
			if err := s.Reader().QueryRow(ctx, "SELECT count(*) FROM patients").Scan(&n); err != nil {
				t.Fatalf("foreign table touched: %v", err)
			}
			if _, _, err := s.SchemaVersion(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCorruptSQLiteFileIsRefusedUntouched(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sealpost.db")
	junk := []byte("this is not a database, it is a text file that someone misplaced here....................................")
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(context.Background(), "sqlite:"+path, store.Options{})
	if err == nil {
		t.Fatal("open of a corrupt file succeeded")
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(junk) {
		t.Fatal("corrupt file was modified")
	}
}

func TestUnknownURLSchemeIsRefused(t *testing.T) {
	t.Parallel()
	_, err := store.Open(context.Background(), "mysql://root@localhost/x", store.Options{})
	if err == nil {
		t.Fatal("want error")
	}
}

func TestTransactionsCommitOrRollBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := s.InTx(ctx, func(tx store.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)", "a1", "One", 1); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		var name string
		if err := s.Reader().QueryRow(ctx, "SELECT name FROM accounts WHERE id = $1", "a1").Scan(&name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rolled-back row: got %v, want ErrNotFound", err)
		}
		err = s.InTx(ctx, func(tx store.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)", "a1", "One", 1)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Reader().QueryRow(ctx, "SELECT name FROM accounts WHERE id = $1", "a1").Scan(&name); err != nil || name != "One" {
			t.Fatalf("committed row: %q %v", name, err)
		}
		_, err = s.Writer().Exec(ctx, "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)", "a1", "Dup", 1)
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate key: got %v, want ErrConflict", err)
		}
	})
}

func TestTimesRoundTripAsMicroseconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 18, 0, 0, 123456789, time.UTC)
	got := store.FromMicros(store.Micros(now))
	if !got.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("got %v", got)
	}
	if !store.FromMicros(store.Micros(time.Time{})).IsZero() {
		t.Fatal("zero time must round-trip")
	}
}

package queue_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestMigrateIsIdempotentAndChecked(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, d)

			if err := queue.CheckMigrated(ctx, s); !errors.Is(err, queue.ErrNotMigrated) {
				t.Fatalf("CheckMigrated before Migrate = %v, want ErrNotMigrated", err)
			}
			var applied []int
			if err := queue.Migrate(ctx, s, func(v int) { applied = append(applied, v) }); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			if len(applied) == 0 || applied[0] != 1 || !slices.IsSorted(applied) {
				t.Fatalf("progress reported versions %v, want 1.. in order", applied)
			}
			if err := queue.CheckMigrated(ctx, s); err != nil {
				t.Fatalf("CheckMigrated after Migrate = %v", err)
			}

			applied = nil
			if err := queue.Migrate(ctx, s, func(v int) { applied = append(applied, v) }); err != nil {
				t.Fatalf("second migrate: %v", err)
			}
			if len(applied) != 0 {
				t.Fatalf("second migrate applied %v again", applied)
			}

			// A River version this binary does not know: a newer binary
			// migrated the database.
			exec(t, s.Writer(), "INSERT INTO river_migration (line, version) VALUES ('main', 9999)")
			if err := queue.CheckMigrated(ctx, s); !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("CheckMigrated on a newer schema = %v, want ErrSchemaTooNew", err)
			}
			if err := queue.Migrate(ctx, s, nil); !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("Migrate on a newer schema = %v, want ErrSchemaTooNew", err)
			}
		})
	}
}

func TestMigrateNeedsStoreSchemaFirst(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.OpenEmpty(t, d)
			if err := queue.Migrate(context.Background(), s, nil); err == nil {
				t.Fatal("Migrate on a database without the store schema succeeded")
			}
		})
	}
}

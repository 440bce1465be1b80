package retention_test

import (
	"context"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// Migration 0022 moves the portal's retention_hours into the accounts'
// retention policies before dropping the column, so no account keeps
// portal messages longer than it had chosen.
func TestMigrationCarriesPortalRetentionHoursIntoThePolicy(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.OpenEmpty(t, d)
			migs, err := store.Migrations(d)
			if err != nil {
				t.Fatal(err)
			}
			apply := func(m store.Migration) {
				t.Helper()
				if err := s.InTx(ctx, func(tx store.Tx) error { _, err := tx.Exec(ctx, m.SQL); return err }); err != nil {
					t.Fatalf("migration %d: %v", m.Version, err)
				}
			}
			var unify store.Migration
			for _, m := range migs {
				if m.Version < 22 {
					apply(m)
				}
				if m.Version == 22 {
					unify = m
				}
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.Writer().Exec(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			cases := []struct {
				name                  string
				hours                 int
				policy                []int // body, portal, quarantine; nil: none set
				wantPolicy            []int // nil: still none
				wantUpdatedAtSettings bool
			}{
				{"hours round up to whole days", 36, nil, []int{30, 2, 30}, true},
				{"zero hours meant the platform default", 0, nil, nil, false},
				{"a shorter portal period of the policy stays", 240, []int{7, 3, 90}, []int{7, 3, 90}, false},
				{"shorter hours win over a longer policy", 48, []int{7, 60, 90}, []int{7, 2, 90}, false},
			}
			for i, c := range cases {
				id := string(rune('a'+i)) + "-acct"
				exec("INSERT INTO accounts (id, name, created_at) VALUES ($1, $1, 1)", id)
				exec(`INSERT INTO portal_settings (account_id, display_name, logo_url, primary_color, retention_hours, updated_at)
					VALUES ($1, '', '', '', $2, 1000)`, id, c.hours)
				if c.policy != nil {
					exec(`INSERT INTO retention_policies (account_id, message_body_days, portal_message_days, quarantine_days, updated_at)
						VALUES ($1, $2, $3, $4, 2000)`, id, c.policy[0], c.policy[1], c.policy[2])
				}
			}
			apply(unify)
			for i, c := range cases {
				id := string(rune('a'+i)) + "-acct"
				var body, portal, quarantine int
				var updated int64
				err := s.Reader().QueryRow(ctx, `SELECT message_body_days, portal_message_days, quarantine_days, updated_at
					FROM retention_policies WHERE account_id = $1`, id).Scan(&body, &portal, &quarantine, &updated)
				switch {
				case c.wantPolicy == nil && err == nil:
					t.Errorf("%s: a policy appeared: %d %d %d", c.name, body, portal, quarantine)
				case c.wantPolicy == nil:
				case err != nil:
					t.Errorf("%s: %v", c.name, err)
				case body != c.wantPolicy[0] || portal != c.wantPolicy[1] || quarantine != c.wantPolicy[2]:
					t.Errorf("%s: policy %d %d %d, want %v", c.name, body, portal, quarantine, c.wantPolicy)
				case c.wantUpdatedAtSettings && updated != 1000:
					t.Errorf("%s: updated_at %d, want the settings' 1000", c.name, updated)
				}
			}
			var n int
			if err := s.Reader().QueryRow(ctx, "SELECT retention_hours FROM portal_settings").Scan(&n); err == nil {
				t.Error("portal_settings.retention_hours is still there")
			}
		})
	}
}

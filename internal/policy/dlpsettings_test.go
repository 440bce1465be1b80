package policy_test

import (
	"context"
	"testing"

	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/dlpsettings"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestDryRunScansWithTheAccountsMRNPatterns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		settings, err := dlpsettings.New(s, w.log, dlpsettings.Options{Now: w.clock})
		if err != nil {
			t.Fatal(err)
		}
		engine, err := policy.New(s, w.log, policy.Options{Now: w.clock, Scanners: settings})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := settings.Replace(ctx, w.ownerA, dlpsettings.Settings{
			MRNPatterns: []dlpsettings.MRNPattern{{Name: "clinic chart", Pattern: `QX\d{7}`, Anywhere: true}}}); err != nil {
			t.Fatal(err)
		}
		m := policy.DryRunMessage{From: "lab@clinic.example", To: []string{"pat@patient.example"}, Subject: "Your file",
			Text: "Your file QX4821937 is ready."}
		mrns := func(accountID string) int {
			t.Helper()
			res, err := engine.DryRun(ctx, accountID, m)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Scan.Findings {
				if f.Type == dlp.MRN {
					return f.Count
				}
			}
			return 0
		}
		if got := mrns(w.a); got != 1 {
			t.Errorf("account A's dry run found %d MRNs, want 1 (its own pattern)", got)
		}
		if got := mrns(w.b); got != 0 {
			t.Errorf("account B's dry run found %d MRNs with A's pattern", got)
		}
	})
}

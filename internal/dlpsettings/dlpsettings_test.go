package dlpsettings_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/dlpsettings"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type world struct {
	svc    *dlpsettings.Service
	log    *audit.Log
	ownerA account.Actor
	ownerB account.Actor
}

func newWorld(t *testing.T, s *store.Store) *world {
	t.Helper()
	clock := func() time.Time { return t0 }
	w := &world{log: audit.New(s, audit.Options{Now: clock})}
	var err error
	if w.svc, err = dlpsettings.New(s, w.log, dlpsettings.Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acct-a", "acct-b"} {
		if _, err := s.Writer().Exec(context.Background(), "INSERT INTO accounts (id, name, created_at) VALUES ($1, $1, $2)", id, store.Micros(t0)); err != nil {
			t.Fatal(err)
		}
	}
	w.ownerA = account.Actor{Principal: auth.Principal{AccountID: "acct-a", ActorKind: auth.ActorSystem, ActorID: "owner-a"}}
	w.ownerB = account.Actor{Principal: auth.Principal{AccountID: "acct-b", ActorKind: auth.ActorSystem, ActorID: "owner-b"}}
	return w
}

func TestReplaceRoundTripsAndBumpsTheVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		st, err := w.svc.Get(ctx, "acct-a")
		if err != nil || st.Version != 0 || st.UpdatedAt != nil || st.Terms == nil || st.MRNPatterns == nil {
			t.Fatalf("initial = %+v, %v", st, err)
		}
		in := dlpsettings.Settings{Terms: []string{"zolgensma", "spinal muscular atrophy"}, Threshold: 0.4,
			MRNPatterns: []dlpsettings.MRNPattern{{Name: "Epic", Pattern: `PT-\d{6}`, Anywhere: true}}}
		for want := int64(1); want <= 2; want++ {
			out, err := w.svc.Replace(ctx, w.ownerA, in)
			if err != nil || out.Version != want {
				t.Fatalf("replace %d: %+v, %v", want, out, err)
			}
		}
		got, err := w.svc.Get(ctx, "acct-a")
		if err != nil || got.Version != 2 || got.Threshold != 0.4 || len(got.Terms) != 2 || got.Terms[1] != "spinal muscular atrophy" ||
			len(got.MRNPatterns) != 1 || got.MRNPatterns[0] != in.MRNPatterns[0] || got.UpdatedAt == nil || !got.UpdatedAt.Equal(t0) {
			t.Fatalf("get = %+v, %v", got, err)
		}
		if other, err := w.svc.Get(ctx, "acct-b"); err != nil || other.Version != 0 || len(other.Terms) != 0 {
			t.Fatalf("another account sees %+v, %v", other, err)
		}
		// Audited with counts only, never the terms or patterns.
		page, err := w.log.List(ctx, "acct-a", audit.Query{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for _, e := range page.Events {
			if e.Action != "dlp.settings_updated" {
				continue
			}
			n++
			if e.Details["terms"] != "2" || e.Details["mrn_patterns"] != "1" {
				t.Errorf("details %v", e.Details)
			}
			if d := fmt.Sprint(e.Details); strings.Contains(d, "zolgensma") || strings.Contains(d, `PT-`) {
				t.Errorf("audit holds settings content: %s", d)
			}
		}
		if n != 2 {
			t.Errorf("%d dlp.settings_updated events, want 2", n)
		}
	})
}

func TestReplaceRefusesWhatDLPCannotCompileAndChangesNothing(t *testing.T) {
	many := make([]string, 5001)
	for i := range many {
		many[i] = fmt.Sprintf("term%d", i)
	}
	cases := []struct {
		name  string
		in    dlpsettings.Settings
		field string
	}{
		{"bad regexp is refused", dlpsettings.Settings{MRNPatterns: []dlpsettings.MRNPattern{{Name: "x", Pattern: `PT-(\d+`}}}, "mrn_patterns[0].pattern"},
		{"backreference (not RE2) is refused", dlpsettings.Settings{MRNPatterns: []dlpsettings.MRNPattern{{Name: "x", Pattern: `(\d)\1`}}}, "mrn_patterns[0].pattern"},
		{"pattern matching empty is refused", dlpsettings.Settings{MRNPatterns: []dlpsettings.MRNPattern{{Name: "x", Pattern: `\d*`}}}, "mrn_patterns[0].pattern"},
		{"nameless pattern is refused", dlpsettings.Settings{MRNPatterns: []dlpsettings.MRNPattern{{Pattern: `PT-\d{6}`}}}, "mrn_patterns[0].name"},
		{"more than 5000 terms are refused", dlpsettings.Settings{Terms: many}, "terms"},
		{"one-letter term is refused", dlpsettings.Settings{Terms: []string{"ok term", "x"}}, "terms[1]"},
		{"threshold above 1 is refused", dlpsettings.Settings{Threshold: 1.5}, "threshold"},
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		for _, tc := range cases {
			_, err := w.svc.Replace(context.Background(), w.ownerA, tc.in)
			var inv *dlpsettings.InvalidError
			if !errors.As(err, &inv) || inv.Field != tc.field {
				t.Errorf("%s: err = %v, want field %s", tc.name, err, tc.field)
			}
			if st, _ := w.svc.Get(context.Background(), "acct-a"); st.Version != 0 {
				t.Errorf("%s: a refused replace stored version %d", tc.name, st.Version)
			}
		}
	})
}

func TestScannerIsCachedPerVersionAndIsolatedPerAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		msg := dlp.Message{Text: "Your zolgensma infusion is on Monday."}
		hasTerm := func(acct string) bool {
			t.Helper()
			sc, err := w.svc.Scanner(ctx, acct)
			if err != nil {
				t.Fatal(err)
			}
			return sc.Scan(ctx, msg).Counts[dlp.AccountTerm] > 0
		}
		if hasTerm("acct-a") {
			t.Fatal("the built-in dictionary already knows zolgensma; pick another word")
		}
		if _, err := w.svc.Replace(ctx, w.ownerA, dlpsettings.Settings{Terms: []string{"zolgensma"}}); err != nil {
			t.Fatal(err)
		}
		if !hasTerm("acct-a") || hasTerm("acct-b") {
			t.Fatal("account A's term must apply to A only")
		}
		compiled := w.svc.Compiles()
		a1, _ := w.svc.Scanner(ctx, "acct-a")
		a2, _ := w.svc.Scanner(ctx, "acct-a")
		if a1 != a2 || w.svc.Compiles() != compiled {
			t.Fatal("an unchanged version must reuse the compiled scanner")
		}
		// A replace (here through a second Service, as another node would)
		// is seen by this node's next scan.
		other, err := dlpsettings.New(s, nil, dlpsettings.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Replace(ctx, w.ownerA, dlpsettings.Settings{Terms: []string{"nusinersen"}}); err != nil {
			t.Fatal(err)
		}
		if hasTerm("acct-a") || w.svc.Compiles() != compiled+1 {
			t.Fatalf("after another node's replace: still the old scanner (compiles %d)", w.svc.Compiles())
		}
	})
}

package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// world is a migrated store with two accounts, a clock the test moves,
// and the retention service and sweeper over them.
type world struct {
	db       *store.Store
	log      *audit.Log
	svc      *retention.Service
	sweeper  *retention.Sweeper
	now      time.Time
	a, b     string
	ownerA   account.Actor
	ownerB   account.Actor
	messages int
}

func newWorld(t *testing.T, s *store.Store) *world {
	t.Helper()
	w := &world{db: s, now: t0, a: "acct-a", b: "acct-b"}
	clock := func() time.Time { return w.now }
	w.log = audit.New(s, audit.Options{Now: clock})
	w.svc = retention.New(s, w.log, retention.Options{Now: clock})
	var err error
	if w.sweeper, err = retention.NewSweeper(s, w.svc, w.log, retention.SweeperOptions{Now: clock}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{w.a, w.b} {
		w.exec(t, "INSERT INTO accounts (id, name, created_at) VALUES ($1, $1, $2)", id, store.Micros(t0))
	}
	w.ownerA = account.Actor{Principal: auth.Principal{AccountID: w.a, ActorKind: auth.ActorSystem, ActorID: "test"}}
	w.ownerB = account.Actor{Principal: auth.Principal{AccountID: w.b, ActorKind: auth.ActorSystem, ActorID: "test"}}
	return w
}

func (w *world) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := w.db.Writer().Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestPolicyDefaultsUntilSetAndIsPerAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		p, err := w.svc.Policy(ctx, w.a)
		if err != nil {
			t.Fatal(err)
		}
		if p.MessageBodyDays != 30 || p.PortalMessageDays != 30 || p.QuarantineDays != 30 || p.UpdatedAt != nil {
			t.Fatalf("default policy = %+v", p)
		}
		set, err := w.svc.SetPolicy(ctx, w.ownerA, retention.Policy{MessageBodyDays: 7, PortalMessageDays: 14, QuarantineDays: 90})
		if err != nil {
			t.Fatal(err)
		}
		if set.UpdatedAt == nil || !set.UpdatedAt.Equal(t0) {
			t.Fatalf("set policy updated_at = %v", set.UpdatedAt)
		}
		got, err := w.svc.Policy(ctx, w.a)
		if err != nil {
			t.Fatal(err)
		}
		if got.MessageBodyDays != 7 || got.PortalMessageDays != 14 || got.QuarantineDays != 90 || got.UpdatedAt == nil {
			t.Fatalf("stored policy = %+v", got)
		}
		if other, _ := w.svc.Policy(ctx, w.b); other.MessageBodyDays != 30 || other.UpdatedAt != nil {
			t.Fatalf("another account's policy changed: %+v", other)
		}
		page, err := w.log.List(ctx, w.a, audit.Query{Action: "retention.policy_updated"})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("audit events: %v %+v", err, page.Events)
		}
		d := page.Events[0].Details
		if d["message_body_days"] != "7" || d["previous_message_body_days"] != "30" || d["quarantine_days"] != "90" {
			t.Fatalf("audit details = %v", d)
		}
	})
}

func TestPolicyOutOfRangeIsRefused(t *testing.T) {
	ok := retention.DefaultPolicy()
	for _, tc := range []struct {
		name  string
		p     retention.Policy
		field string
	}{
		{"zero body days are refused", retention.Policy{MessageBodyDays: 0, PortalMessageDays: 30, QuarantineDays: 30}, "message_body_days"},
		{"negative portal days are refused", retention.Policy{MessageBodyDays: 30, PortalMessageDays: -1, QuarantineDays: 30}, "portal_message_days"},
		{"more than ten years of quarantine is refused", retention.Policy{MessageBodyDays: 30, PortalMessageDays: 30, QuarantineDays: 3651}, "quarantine_days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			var inv *retention.InvalidPolicyError
			if !errors.As(err, &inv) || !errors.Is(err, retention.ErrInvalidPolicy) || len(inv.Issues) != 1 || inv.Issues[0].Field != tc.field {
				t.Fatalf("Validate(%+v) = %v", tc.p, err)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bounds := retention.Policy{MessageBodyDays: retention.MinDays, PortalMessageDays: retention.MaxDays, QuarantineDays: retention.MinDays}
	if err := bounds.Validate(); err != nil {
		t.Fatalf("the bounds themselves are refused: %v", err)
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		if _, err := w.svc.SetPolicy(context.Background(), w.ownerA, retention.Policy{}); !errors.Is(err, retention.ErrInvalidPolicy) {
			t.Fatalf("SetPolicy(zero) = %v", err)
		}
		if p, _ := w.svc.Policy(context.Background(), w.a); p.UpdatedAt != nil {
			t.Fatal("a refused policy was stored")
		}
	})
}

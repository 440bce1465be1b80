package messages_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// quarantineWorld is secureWorld with a quarantine rule in both accounts
// and the retention sweeper running the quarantine's expiry.
type quarantineWorld struct {
	*secureWorld
	log      *audit.Log
	policies *retention.Service
	sweeper  *retention.Sweeper
}

func newQuarantineWorld(t *testing.T, s *store.Store) *quarantineWorld {
	t.Helper()
	ctx := context.Background()
	w := &quarantineWorld{secureWorld: newSecureWorld(t, s)}
	w.log = audit.New(s, audit.Options{Now: w.now})
	w.policies = retention.New(s, w.log, retention.Options{Now: w.now})
	var err error
	if w.sweeper, err = retention.NewSweeper(s, w.policies, w.log, retention.SweeperOptions{Now: w.now}); err != nil {
		t.Fatal(err)
	}
	w.sweeper.Register(retention.KindQuarantine, &messages.QuarantineExpiry{DB: s, Audit: w.log, Now: w.now})
	for _, a := range []account.Actor{w.a, w.b} {
		if _, err := w.rules.Replace(ctx, a, []policy.RuleInput{{Name: "hold", Conditions: policy.Conditions{Tags: []string{"holdme"}},
			Action: policy.Quarantine}}); err != nil {
			t.Fatal(err)
		}
	}
	w.setMode(secureline.ModeForcedTLS)
	return w
}

// quarantine sends a message the rule quarantines, for two recipients.
func (w *quarantineWorld) quarantine(actor account.Actor, from string) string {
	w.t.Helper()
	acc, err := w.msgs.Send(context.Background(), actor, messages.Request{From: from,
		To: []string{"pat@patient.example", "kim@patient.example"}, Subject: "Results", Text: "Patient SSN 205-89-4542.",
		Tags: []string{"holdme"}}, "")
	if err != nil {
		w.t.Fatal(err)
	}
	return acc.ID
}

// heldRow is what stays of a message for reporting, and whether its body did.
type heldRow struct {
	states  []string
	replies []string
	body    bool
	stamped bool
	events  int
	entry   policy.Status
}

func (w *quarantineWorld) row(actor account.Actor, id string) heldRow {
	w.t.Helper()
	ctx := context.Background()
	accountID := actor.Principal.AccountID
	var r heldRow
	var shredded int64
	if err := w.db.Reader().QueryRow(ctx, `SELECT body_sealed IS NOT NULL, COALESCE(body_shredded_at, 0) FROM messages
		WHERE account_id = $1 AND id = $2`, accountID, id).Scan(&r.body, &shredded); err != nil {
		w.t.Fatal(err)
	}
	r.stamped = shredded != 0
	rows, err := w.db.Reader().Query(ctx, `SELECT state, smtp_reply FROM message_recipients WHERE account_id = $1 AND message_id = $2
		ORDER BY rcpt_index`, accountID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var state, reply string
		if err := rows.Scan(&state, &reply); err != nil {
			w.t.Fatal(err)
		}
		r.states, r.replies = append(r.states, state), append(r.replies, reply)
	}
	if err := w.db.Reader().QueryRow(ctx, `SELECT count(*) FROM message_events WHERE account_id = $1 AND message_id = $2
		AND type = 'failed' AND details LIKE '%quarantine expired%'`, accountID, id).Scan(&r.events); err != nil {
		w.t.Fatal(err)
	}
	e, err := w.hold.Get(ctx, accountID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	r.entry = e.Status
	return r
}

func TestQuarantineExpiresAfterTheAccountsQuarantineDays(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newQuarantineWorld(t, s)
		ctx := context.Background()
		start := w.now()
		p := retention.DefaultPolicy()
		p.QuarantineDays = 60
		if _, err := w.policies.SetPolicy(ctx, w.b, p); err != nil {
			t.Fatal(err)
		}
		expired := w.quarantine(w.a, "results@clinic.example")
		inFlight := w.quarantine(w.a, "results@clinic.example")
		w.exec("UPDATE message_recipients SET state = 'deferred' WHERE message_id = $1 AND rcpt_index = 1", inFlight)
		reviewed := w.quarantine(w.a, "results@clinic.example")
		if _, err := w.hold.Release(ctx, w.a, reviewed); err != nil {
			t.Fatal(err)
		}
		otherAccount := w.quarantine(w.b, "results@other.example") // 60 days
		w.set(start.Add(20 * retention.Day))
		young := w.quarantine(w.a, "results@clinic.example")

		w.set(start.Add(31 * retention.Day))
		rep, err := w.sweeper.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Shredded[retention.KindQuarantine] != 2 {
			t.Errorf("report = %+v, want 2 holds ended", rep)
		}

		failed := []string{messages.StateFailed, messages.StateFailed}
		held := []string{messages.StateQuarantined, messages.StateQuarantined}
		cases := []struct {
			name   string
			actor  account.Actor
			id     string
			states []string
			body   bool
			events int
			entry  policy.Status
		}{
			{"a hold past quarantine_days is rejected and its body shredded", w.a, expired, failed, false, 2, policy.StatusRejected},
			{"a recipient still in flight keeps the body", w.a, inFlight, []string{messages.StateFailed, "deferred"}, true, 1, policy.StatusRejected},
			{"a hold reviewed in time is left alone", w.a, reviewed, []string{messages.StateQueued, messages.StateQueued}, true, 0, policy.StatusReleased},
			{"a hold inside quarantine_days is untouched", w.a, young, held, true, 0, policy.StatusPending},
			{"another account's hold follows its own policy", w.b, otherAccount, held, true, 0, policy.StatusPending},
		}
		for _, c := range cases {
			r := w.row(c.actor, c.id)
			if strings.Join(r.states, ",") != strings.Join(c.states, ",") || r.body != c.body || r.stamped == c.body ||
				r.events != c.events || r.entry != c.entry {
				t.Errorf("%s: %+v", c.name, r)
			}
			if c.events > 0 && r.replies[0] != messages.QuarantineExpiredReason {
				t.Errorf("%s: smtp_reply %q", c.name, r.replies[0])
			}
		}

		// Reviewed by the sweeper: a person can no longer act on it.
		e, err := w.hold.Get(ctx, w.a.Principal.AccountID, expired)
		if err != nil || e.ReviewerKind != "system" || e.ReviewerID != "retention-sweeper" || e.ReviewedAt == nil {
			t.Errorf("entry after expiry: %+v %v", e, err)
		}
		if _, err := w.hold.Release(ctx, w.a, expired); !errors.Is(err, policy.ErrReviewed) {
			t.Errorf("releasing an expired hold: %v", err)
		}

		// Audited per message and, with counts, per account.
		page, err := w.log.List(ctx, w.a.Principal.AccountID, audit.Query{Action: "quarantine.rejected"})
		if err != nil || len(page.Events) != 2 || page.Events[0].ActorID != "retention-sweeper" ||
			page.Events[0].Details["reason"] != messages.QuarantineExpiredReason {
			t.Fatalf("quarantine.rejected events: %+v %v", page.Events, err)
		}
		page, err = w.log.List(ctx, w.a.Principal.AccountID, audit.Query{Action: "retention.shredded"})
		if err != nil || len(page.Events) != 1 || page.Events[0].Details["quarantine"] != "2" {
			t.Fatalf("retention.shredded: %+v %v", page.Events, err)
		}
		if page, _ := w.log.List(ctx, w.b.Principal.AccountID, audit.Query{Action: "retention.shredded"}); len(page.Events) != 0 {
			t.Error("an account that lost nothing was audited")
		}
		if rep, err := w.sweeper.Sweep(ctx); err != nil || rep.Shredded[retention.KindQuarantine] != 0 {
			t.Errorf("a second sweep: %+v %v", rep, err)
		}
	})
}

func TestQuarantineExpiryIsScopedToItsAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newQuarantineWorld(t, s)
		ctx := context.Background()
		var mine []string
		for range 3 {
			mine = append(mine, w.quarantine(w.a, "results@clinic.example"))
		}
		theirs := w.quarantine(w.b, "results@other.example")
		e := &messages.QuarantineExpiry{DB: s, Now: w.now, BatchSize: 2}
		if n, done, err := e.Shred(ctx, w.a.Principal.AccountID, w.now().Add(time.Second), time.Now().Add(-time.Second)); err != nil ||
			n != 0 || done {
			t.Fatalf("Shred past its deadline = %d, %v, %v", n, done, err)
		}
		n, done, err := e.Shred(ctx, w.a.Principal.AccountID, w.now().Add(time.Second), time.Now().Add(time.Minute))
		if err != nil || n != 3 || !done {
			t.Fatalf("Shred = %d, %v, %v; want 3, done", n, done, err)
		}
		for _, id := range mine {
			if r := w.row(w.a, id); r.body || r.entry != policy.StatusRejected {
				t.Errorf("%s: %+v", id, r)
			}
		}
		if r := w.row(w.b, theirs); !r.body || r.entry != policy.StatusPending || r.states[0] != messages.StateQuarantined {
			t.Errorf("another account's hold was touched: %+v", r)
		}
	})
}

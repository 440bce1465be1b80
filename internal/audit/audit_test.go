package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func event(account, action string, i int) audit.Event {
	return audit.Event{
		AccountID: account, ActorKind: "client", ActorID: fmt.Sprintf("spc_%d", i%2), Action: action,
		Target: fmt.Sprintf("message/%d", i), Outcome: audit.OutcomeSuccess, SourceIP: "192.0.2.1",
		RequestID: fmt.Sprintf("req-%d", i), Details: map[string]string{"n": fmt.Sprint(i)},
	}
}

// seed appends n events for account and returns them as stored.
func seed(t *testing.T, log *audit.Log, account string, n int) []audit.Event {
	t.Helper()
	var out []audit.Event
	for i := range n {
		action := "message.sent"
		if i%3 == 0 {
			action = "client.created"
		}
		e, err := log.Append(context.Background(), event(account, action, i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func verify(t *testing.T, log *audit.Log, account string) audit.Report {
	t.Helper()
	r, err := log.Verify(context.Background(), account, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestChainLinksAndVerifies(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		log := audit.New(s, audit.Options{})
		events := seed(t, log, "acct-a", 5)
		for i, e := range events {
			if e.Seq != int64(i+1) {
				t.Errorf("event %d has seq %d", i, e.Seq)
			}
			want := strings.Repeat("0", 64)
			if i > 0 {
				want = events[i-1].Hash
			}
			if e.PrevHash != want {
				t.Errorf("event %d prev_hash %s, want %s", i, e.PrevHash, want)
			}
			if e.Hash != audit.Hash(e) || len(e.Hash) != 64 {
				t.Errorf("event %d hash %s", i, e.Hash)
			}
		}
		if r := verify(t, log, "acct-a"); !r.OK() || r.Events != 5 {
			t.Fatalf("verify: %s", r)
		}
		// A second account's chain is independent and starts at seq 1.
		b := seed(t, log, "acct-b", 2)
		if b[0].Seq != 1 || b[0].PrevHash != strings.Repeat("0", 64) {
			t.Fatalf("second chain: %+v", b[0])
		}
		reports, err := log.VerifyAll(context.Background(), nil)
		if err != nil || len(reports) != 2 {
			t.Fatalf("VerifyAll: %v %v", reports, err)
		}
	})
}

func TestConcurrentAppendsKeepOneValidChain(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		log := audit.New(s, audit.Options{})
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					if _, err := log.Append(context.Background(), event("acct-a", "message.sent", g*10+i)); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if r := verify(t, log, "acct-a"); !r.OK() || r.Events != 40 {
			t.Fatalf("verify after concurrent appends: %s", r)
		}
	})
}

func TestRolledBackAppendLeavesNoTrace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		log := audit.New(s, audit.Options{})
		seed(t, log, "acct-a", 2)
		boom := errors.New("action failed")
		err := s.InTx(ctx, func(tx store.Tx) error {
			if _, err := log.AppendTx(ctx, tx, event("acct-a", "client.revoked", 9)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		page, err := log.List(ctx, "acct-a", audit.Query{})
		if err != nil || len(page.Events) != 2 {
			t.Fatalf("after rollback: %d events (%v)", len(page.Events), err)
		}
		next, err := log.Append(ctx, event("acct-a", "client.revoked", 3))
		if err != nil || next.Seq != 3 {
			t.Fatalf("next append seq %d (%v), want 3", next.Seq, err)
		}
		if r := verify(t, log, "acct-a"); !r.OK() {
			t.Fatal(r)
		}
	})
}

func TestListFiltersPagesAndScopes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		log := audit.New(s, audit.Options{Now: func() time.Time { clock = clock.Add(time.Minute); return clock }})
		seed(t, log, "acct-a", 12) // times 00:01 .. 00:12
		seed(t, log, "acct-b", 3)

		var all []audit.Event
		cursor := ""
		for pages := 0; ; pages++ {
			p, err := log.List(ctx, "acct-a", audit.Query{Limit: 5, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Events...)
			if p.NextCursor == "" {
				if pages != 2 {
					t.Errorf("%d pages, want 3", pages+1)
				}
				break
			}
			cursor = p.NextCursor
		}
		if len(all) != 12 {
			t.Fatalf("paged %d events, want 12", len(all))
		}
		for i, e := range all {
			if e.AccountID != "acct-a" || e.Seq != int64(i+1) {
				t.Fatalf("event %d: account %s seq %d", i, e.AccountID, e.Seq)
			}
		}

		cases := []struct {
			name string
			q    audit.Query
			want int
		}{
			{"action", audit.Query{Action: "client.created"}, 4},
			{"actor", audit.Query{ActorID: "spc_1"}, 6},
			{"since", audit.Query{Since: time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)}, 3},
			{"until", audit.Query{Until: time.Date(2026, 1, 1, 0, 3, 0, 0, time.UTC)}, 2},
			{"combined", audit.Query{Action: "message.sent", ActorID: "spc_1"}, 4},
			{"limit capped", audit.Query{Limit: 10000}, 12},
		}
		for _, c := range cases {
			p, err := log.List(ctx, "acct-a", c.q)
			if err != nil || len(p.Events) != c.want {
				t.Errorf("%s: %d events (%v), want %d", c.name, len(p.Events), err, c.want)
			}
		}
		// A cursor from account A's listing never reveals B's events.
		p, err := log.List(ctx, "acct-b", audit.Query{Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if e.AccountID != "acct-b" {
				t.Fatal("listing leaked another account's event")
			}
		}
		for _, bad := range []string{"!!", "AAAA", "AQAAAAAAAAAAAA", strings.Repeat("A", 40)} {
			if _, err := log.List(ctx, "acct-a", audit.Query{Cursor: bad}); !errors.Is(err, audit.ErrBadCursor) {
				t.Errorf("cursor %q: got %v, want ErrBadCursor", bad, err)
			}
		}
	})
}

func TestInvalidEventsAreRefused(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		log := audit.New(s, audit.Options{})
		long := strings.Repeat("x", 600)
		cases := map[string]audit.Event{
			"no action":         {ActorKind: "user"},
			"bad action":        {ActorKind: "user", Action: "Drop Table"},
			"no actor kind":     {Action: "user.login"},
			"long target":       {ActorKind: "user", Action: "user.login", Target: long},
			"long detail value": {ActorKind: "user", Action: "user.login", Details: map[string]string{"k": long}},
			"empty detail key":  {ActorKind: "user", Action: "user.login", Details: map[string]string{"": "v"}},
		}
		for name, e := range cases {
			if _, err := log.Append(context.Background(), e); !errors.Is(err, audit.ErrInvalid) {
				t.Errorf("%s: got %v, want ErrInvalid", name, err)
			}
		}
		if reports, _ := log.VerifyAll(context.Background(), nil); len(reports) != 0 {
			t.Fatalf("refused events created chains: %v", reports)
		}
	})
}

func TestDatabaseRefusesEditsWhileTriggersStand(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		log := audit.New(s, audit.Options{})
		seed(t, log, "acct-a", 2)
		if _, err := s.Writer().Exec(ctx, "UPDATE audit_events SET target = 'x' WHERE seq = 1"); err == nil {
			t.Error("UPDATE of an audit event succeeded")
		}
		if _, err := s.Writer().Exec(ctx, "DELETE FROM audit_events WHERE seq = 1"); err == nil {
			t.Error("DELETE of an audit event succeeded")
		}
	})
}

// dropTriggers does what an attacker with database access could: remove
// the append-only guard. The hash chain must still expose any edit.
func dropTriggers(t *testing.T, s *store.Store) {
	t.Helper()
	stmts := []string{"DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete"}
	if s.Dialect() == store.Postgres {
		stmts = []string{"DROP TRIGGER audit_events_no_update ON audit_events"}
	}
	for _, q := range stmts {
		if _, err := s.Writer().Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyFindsTheFirstBrokenLink(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tamper  func(s *store.Store, events []audit.Event) error
		wantSeq int64
		want    string
	}{
		{"edited target", func(s *store.Store, _ []audit.Event) error {
			_, err := s.Writer().Exec(context.Background(), "UPDATE audit_events SET target = 'message/999' WHERE account_id = 'acct-a' AND seq = 3")
			return err
		}, 3, "hash mismatch"},
		{"edited details", func(s *store.Store, _ []audit.Event) error {
			_, err := s.Writer().Exec(context.Background(), `UPDATE audit_events SET details = '{"n":"42"}' WHERE account_id = 'acct-a' AND seq = 2`)
			return err
		}, 2, "hash mismatch"},
		{"deleted middle event", func(s *store.Store, _ []audit.Event) error {
			_, err := s.Writer().Exec(context.Background(), "DELETE FROM audit_events WHERE account_id = 'acct-a' AND seq = 4")
			return err
		}, 4, "gap"},
		{"deleted last event", func(s *store.Store, _ []audit.Event) error {
			_, err := s.Writer().Exec(context.Background(), "DELETE FROM audit_events WHERE account_id = 'acct-a' AND seq = 6")
			return err
		}, 6, "truncated"},
		{"edited and re-hashed", func(s *store.Store, events []audit.Event) error {
			e := events[2]
			e.Target = "message/forged"
			_, err := s.Writer().Exec(context.Background(), "UPDATE audit_events SET target = $1, hash = $2 WHERE account_id = 'acct-a' AND seq = 3",
				e.Target, audit.Hash(e))
			return err
		}, 4, "broken link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				log := audit.New(s, audit.Options{})
				events := seed(t, log, "acct-a", 6)
				seed(t, log, "acct-b", 2)
				dropTriggers(t, s)
				if err := c.tamper(s, events); err != nil {
					t.Fatal(err)
				}
				r := verify(t, log, "acct-a")
				if r.OK() || r.BrokenSeq != c.wantSeq || !strings.Contains(r.Broken, c.want) {
					t.Fatalf("report %q (seq %d), want %q at seq %d", r, r.BrokenSeq, c.want, c.wantSeq)
				}
				if r := verify(t, log, "acct-b"); !r.OK() {
					t.Fatalf("untouched chain reported broken: %s", r)
				}
			})
		})
	}
}

func TestAppendBatchInterleavesAccountsAndChunks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		log := audit.New(s, audit.Options{})
		seed(t, log, "acct-a", 2)
		var batch []audit.Event
		for i := range 1203 { // crosses the 500-row insert chunks
			batch = append(batch, event([]string{"acct-a", "acct-b", "acct-c"}[i%3], "message.sent", i))
		}
		out, err := log.AppendBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Seq != 3 || out[1].Seq != 1 || out[len(out)-1].Seq != 401 {
			t.Fatalf("seqs %d %d %d", out[0].Seq, out[1].Seq, out[len(out)-1].Seq)
		}
		for _, acct := range []string{"acct-a", "acct-b", "acct-c"} {
			if r := verify(t, log, acct); !r.OK() {
				t.Fatalf("%s: %s", acct, r)
			}
		}
		// One invalid event refuses the whole batch.
		bad := append([]audit.Event{event("acct-a", "message.sent", 1)}, audit.Event{Action: "x"})
		if _, err := log.AppendBatch(ctx, bad); !errors.Is(err, audit.ErrInvalid) {
			t.Fatalf("got %v", err)
		}
		if r := verify(t, log, "acct-a"); r.Events != 403 {
			t.Fatalf("refused batch left events: %s", r)
		}
	})
}

package retention_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

type rcpt struct {
	state   string
	updated time.Duration // before t0
	ownBody bool
}

const day = retention.Day

// addMessage stores a message of the account created age before t0 with
// a sealed body (opaque bytes: the sweeper never opens them) and the
// given recipients.
func (w *world) addMessage(t *testing.T, accountID string, age time.Duration, rcpts ...rcpt) string {
	t.Helper()
	w.messages++
	id := fmt.Sprintf("msg-%04d", w.messages)
	created := store.Micros(t0.Add(-age))
	w.exec(t, `INSERT INTO messages (id, account_id, actor_kind, actor_id, from_addr, from_domain, header_id, kind, tags, metadata,
		options, body_sealed, size, smtputf8, send_at, created_at) VALUES ($1, $2, 'system', 'test', 'a@clinic.example', 'clinic.example',
		$1, 'transactional', '[]', '{}', '{}', $3, 10, FALSE, $4, $4)`, id, accountID, []byte("sealed"), created)
	for i, r := range rcpts {
		var body []byte
		if r.ownBody {
			body = []byte("sealed-own")
		}
		w.exec(t, `INSERT INTO message_recipients (message_id, rcpt_index, account_id, address, domain, kind, state, priority,
			next_attempt_at, expires_at, updated_at, body_sealed) VALUES ($1, $2, $3, $4, 'patient.example', 'to', $5, 1, $6, $6, $7, $8)`,
			id, i, accountID, fmt.Sprintf("p%d@patient.example", i), r.state, created, store.Micros(t0.Add(-r.updated)), body)
	}
	return id
}

// bodies reports whether the message still holds its body, how many
// recipient bodies remain, and whether body_shredded_at is set.
func (w *world) bodies(t *testing.T, accountID, id string) (message bool, recipients int, shreddedAt bool) {
	t.Helper()
	ctx := context.Background()
	var shredded int64
	if err := w.db.Reader().QueryRow(ctx, `SELECT body_sealed IS NOT NULL, COALESCE(body_shredded_at, 0) FROM messages
		WHERE account_id = $1 AND id = $2`, accountID, id).Scan(&message, &shredded); err != nil {
		t.Fatal(err)
	}
	if err := w.db.Reader().QueryRow(ctx, `SELECT COUNT(*) FROM message_recipients WHERE account_id = $1 AND message_id = $2
		AND body_sealed IS NOT NULL`, accountID, id).Scan(&recipients); err != nil {
		t.Fatal(err)
	}
	return message, recipients, shredded != 0
}

func TestSweepShredsOnlyFinishedMessagesPastRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		cases := []struct {
			name   string
			age    time.Duration
			rcpts  []rcpt
			shreds bool
		}{
			{"a message delivered past retention is shredded", 40 * day,
				[]rcpt{{"delivered", 35 * day, false}}, true},
			{"every final state counts as finished", 40 * day,
				[]rcpt{{"bounced", 39 * day, true}, {"suppressed", 39 * day, false}, {"failed", 38 * day, true}, {"cancelled", 38 * day, false}}, true},
			{"recipient bodies of a personalised message are shredded with it", 40 * day,
				[]rcpt{{"delivered", 31 * day, true}, {"delivered", 31 * day, true}}, true},
			{"a recipient still deferred keeps the body", 40 * day,
				[]rcpt{{"delivered", 35 * day, false}, {"deferred", 1 * day, false}}, false},
			{"a recipient still queued keeps the body", 40 * day,
				[]rcpt{{"queued", 35 * day, true}}, false},
			{"retention counts from the last final state, not from acceptance", 40 * day,
				[]rcpt{{"delivered", 35 * day, false}, {"bounced", 10 * day, false}}, false},
			{"a young message keeps its body", 5 * day,
				[]rcpt{{"delivered", 5 * day, false}}, false},
			{"a message finished just inside retention keeps its body", 31 * day,
				[]rcpt{{"delivered", 30*day - time.Minute, false}}, false},
		}
		ids := make([]string, len(cases))
		for i, c := range cases {
			ids[i] = w.addMessage(t, w.a, c.age, c.rcpts...)
		}
		rep, err := w.sweeper.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for i, c := range cases {
			msg, rcptBodies, stamped := w.bodies(t, w.a, ids[i])
			if c.shreds {
				want++
				if msg || rcptBodies != 0 || !stamped {
					t.Errorf("%s: body kept (message %v, recipient bodies %d, stamped %v)", c.name, msg, rcptBodies, stamped)
				}
				continue
			}
			own := 0
			for _, r := range c.rcpts {
				if r.ownBody {
					own++
				}
			}
			if !msg || rcptBodies != own || stamped {
				t.Errorf("%s: body shredded (message %v, recipient bodies %d of %d, stamped %v)", c.name, msg, rcptBodies, own, stamped)
			}
		}
		if rep.Shredded[retention.KindMessageBody] != want || !rep.Complete || rep.Accounts != 2 {
			t.Fatalf("report = %+v, want %d message bodies", rep, want)
		}
		var kept int
		if err := s.Reader().QueryRow(context.Background(), "SELECT COUNT(*) FROM message_recipients WHERE account_id = $1", w.a).Scan(&kept); err != nil || kept != 14 {
			t.Fatalf("recipient rows after the sweep: %d %v (metadata must stay)", kept, err)
		}
	})
}

func TestSweepAppliesEachAccountsOwnPolicy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		if _, err := w.svc.SetPolicy(ctx, w.ownerB, retention.Policy{MessageBodyDays: 60, PortalMessageDays: 30, QuarantineDays: 30}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.SetPolicy(ctx, w.ownerA, retention.Policy{MessageBodyDays: 1, PortalMessageDays: 30, QuarantineDays: 30}); err != nil {
			t.Fatal(err)
		}
		a := w.addMessage(t, w.a, 3*day, rcpt{"delivered", 2 * day, false})
		b := w.addMessage(t, w.b, 40*day, rcpt{"delivered", 35 * day, false})
		if _, err := w.sweeper.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if msg, _, _ := w.bodies(t, w.a, a); msg {
			t.Error("account A (1 day) kept a body finished 2 days ago")
		}
		if msg, _, _ := w.bodies(t, w.b, b); !msg {
			t.Error("account B (60 days) lost a body finished 35 days ago")
		}
	})
}

func TestSweepIsAuditedWithCountsOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		w.addMessage(t, w.a, 40*day, rcpt{"delivered", 35 * day, false})
		w.addMessage(t, w.a, 40*day, rcpt{"bounced", 35 * day, false})
		w.addMessage(t, w.b, 2*day, rcpt{"delivered", 2 * day, false})
		if _, err := w.sweeper.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		page, err := w.log.List(ctx, w.a, audit.Query{Action: "retention.shredded"})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("account A retention.shredded events: %v %d", err, len(page.Events))
		}
		e := page.Events[0]
		wantCutoff := t0.Add(-30 * day).Format(time.RFC3339)
		if e.ActorKind != "system" || e.Outcome != audit.OutcomeSuccess || e.Details["message_body"] != "2" ||
			e.Details["message_body_cutoff"] != wantCutoff || len(e.Details) != 2 {
			t.Fatalf("audit event = %+v", e)
		}
		if page, _ := w.log.List(ctx, w.b, audit.Query{Action: "retention.shredded"}); len(page.Events) != 0 {
			t.Fatal("an account that lost nothing got a retention.shredded event")
		}
		platform, err := w.log.List(ctx, "", audit.Query{Action: "retention.swept"})
		if err != nil || len(platform.Events) != 1 {
			t.Fatalf("platform retention.swept events: %v %d", err, len(platform.Events))
		}
		if d := platform.Events[0].Details; d["message_body"] != "2" || d["accounts"] != "2" || d["complete"] != "true" {
			t.Fatalf("platform details = %v", d)
		}

		// A second sweep finds nothing more and says so.
		rep, err := w.sweeper.Sweep(ctx)
		if err != nil || rep.Shredded[retention.KindMessageBody] != 0 {
			t.Fatalf("second sweep: %+v %v", rep, err)
		}
		if page, _ := w.log.List(ctx, w.a, audit.Query{Action: "retention.shredded"}); len(page.Events) != 1 {
			t.Fatal("a sweep that shredded nothing audited the account")
		}
		for _, id := range []string{w.a, w.b, ""} {
			r, err := w.log.Verify(ctx, id, nil)
			if err != nil || !r.OK() {
				t.Fatalf("audit chain %q: %+v %v", id, r, err)
			}
		}
	})
}

func TestBatchesWalkPastBodiesThatMustStay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		// The oldest messages are still in flight; shreddable ones come
		// after them, so a scan that restarted at the oldest each batch
		// would never reach them.
		for i := range 5 {
			w.addMessage(t, w.a, 60*day-time.Duration(i)*time.Hour, rcpt{"deferred", time.Hour, false})
		}
		var due []string
		for i := range 7 {
			due = append(due, w.addMessage(t, w.a, 50*day-time.Duration(i)*time.Hour, rcpt{"delivered", 45 * day, true}))
		}
		m := &retention.MessageBodies{DB: s, Now: func() time.Time { return t0 }, BatchSize: 2}
		n, done, err := m.Shred(ctx, w.a, t0.Add(-30*day), time.Now().Add(time.Minute))
		if err != nil || n != 7 || !done {
			t.Fatalf("Shred = %d, %v, %v; want 7, done", n, done, err)
		}
		for _, id := range due {
			if msg, rb, _ := w.bodies(t, w.a, id); msg || rb != 0 {
				t.Fatalf("%s kept its body", id)
			}
		}
		// Another account's messages are never touched, whatever the cutoff.
		other := w.addMessage(t, w.b, 50*day, rcpt{"delivered", 45 * day, false})
		if n, _, err := m.Shred(ctx, w.a, t0, time.Now().Add(time.Minute)); err != nil || n != 0 {
			t.Fatalf("Shred again = %d %v", n, err)
		}
		if msg, _, _ := w.bodies(t, w.b, other); !msg {
			t.Fatal("shredding account A removed account B's body")
		}
	})
}

func TestShredStopsAtItsDeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		id := w.addMessage(t, w.a, 50*day, rcpt{"delivered", 45 * day, false})
		m := &retention.MessageBodies{DB: s}
		n, done, err := m.Shred(context.Background(), w.a, t0, time.Now().Add(-time.Second))
		if err != nil || n != 0 || done {
			t.Fatalf("Shred past its deadline = %d, %v, %v", n, done, err)
		}
		if msg, _, _ := w.bodies(t, w.a, id); !msg {
			t.Fatal("a shred past its deadline deleted a body")
		}
	})
}

// fakeShredder stands in for the portal's shredder, which lives in
// another package, to show the sweeper hands it the portal period.
type fakeShredder struct {
	accounts []string
	cutoffs  []time.Time
}

func (f *fakeShredder) Shred(_ context.Context, accountID string, cutoff, _ time.Time) (int, bool, error) {
	f.accounts = append(f.accounts, accountID)
	f.cutoffs = append(f.cutoffs, cutoff)
	return 1, true, nil
}

func TestRegisteredShreddersGetTheirKindsPeriodAndCount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		sw, err := retention.NewSweeper(s, w.svc, w.log, retention.SweeperOptions{Now: func() time.Time { return t0 }, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		portal := &fakeShredder{}
		sw.Register(retention.KindPortalMessage, portal)
		if _, err := w.svc.SetPolicy(ctx, w.ownerA, retention.Policy{MessageBodyDays: 30, PortalMessageDays: 7, QuarantineDays: 30}); err != nil {
			t.Fatal(err)
		}
		w.addMessage(t, w.a, 40*day, rcpt{"delivered", 35 * day, false})
		rep, err := sw.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(portal.accounts) != 2 || !portal.cutoffs[0].Equal(t0.Add(-7*day)) || !portal.cutoffs[1].Equal(t0.Add(-30*day)) {
			t.Fatalf("portal shredder calls: %v %v", portal.accounts, portal.cutoffs)
		}
		if rep.Shredded[retention.KindPortalMessage] != 2 || rep.Shredded[retention.KindMessageBody] != 1 {
			t.Fatalf("report = %+v", rep)
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			if f.GetName() != "sealpost_retention_shredded_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
		if got["message_body"] != 1 || got["portal_message"] != 2 || got["quarantine"] != 0 {
			t.Fatalf("sealpost_retention_shredded_total = %v", got)
		}
	})
}

func TestCancelledScheduledMessageIsShreddedBeforeItsSendTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		id := w.addMessage(t, w.a, 40*day, rcpt{"cancelled", 35 * day, false})
		w.exec(t, "UPDATE messages SET send_at = $1 WHERE id = $2", store.Micros(t0.Add(300*day)), id)
		if _, err := w.sweeper.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if msg, _, stamped := w.bodies(t, w.a, id); msg || !stamped {
			t.Fatal("a message cancelled 35 days ago kept its body until its old send time")
		}
	})
}

// On SQLite the shredded bytes must leave the database files, not only
// the row: secure_delete zeroes the freed pages and the sweep's
// checkpoint empties the WAL that still held them.
func TestShreddedBytesLeaveTheSQLiteFiles(t *testing.T) {
	url := storetest.URL(t, store.SQLite)
	s, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(context.Background(), store.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, s)
	marker := bytes.Repeat([]byte("SHRED-ME-0123456789/"), 400) // 8 KB: overflow pages
	id := w.addMessage(t, w.a, 40*day, rcpt{"delivered", 35 * day, false})
	w.exec(t, "UPDATE messages SET body_sealed = $1 WHERE id = $2", marker, id)
	path := store.SQLitePath(url)
	if !fileHolds(t, path, marker[:40]) && !fileHolds(t, path+"-wal", marker[:40]) {
		t.Fatal("test setup: the marker is not on disk before the sweep")
	}
	if _, err := w.sweeper.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		if fileHolds(t, f, []byte("SHRED-ME-")) {
			t.Errorf("%s still holds shredded bytes", filepath.Base(f))
		}
	}
}

func fileHolds(t *testing.T, path string, needle []byte) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, needle)
}

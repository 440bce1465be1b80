package policy_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// recordingHook is a Releaser that records its calls and writes a row in
// the review's transaction, so a test can see the two commit together.
type recordingHook struct {
	calls []string
	fail  error
}

func (h *recordingHook) Release(ctx context.Context, tx store.Tx, accountID, messageID string) error {
	return h.record(ctx, tx, "release", accountID, messageID)
}

func (h *recordingHook) Reject(ctx context.Context, tx store.Tx, accountID, messageID string) error {
	return h.record(ctx, tx, "reject", accountID, messageID)
}

func (h *recordingHook) record(ctx context.Context, tx store.Tx, what, accountID, messageID string) error {
	h.calls = append(h.calls, what+" "+accountID+" "+messageID)
	if _, err := tx.Exec(ctx, `INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details)
		VALUES ($1, $2, $3, 0, $4, 0, '{}')`, store.NewID(), accountID, messageID, "quarantine_"+what); err != nil {
		return err
	}
	return h.fail
}

func hold(t *testing.T, q *policy.QuarantineStore, s *store.Store, accountID, messageID string) {
	t.Helper()
	d := policy.Decision{Action: policy.Quarantine, RuleID: "rule-q", Reasons: []string{`rule "q" matched`, "1 ssn finding(s)"}}
	if _, err := q.Hold(context.Background(), s.Writer(), accountID, messageID, d); err != nil {
		t.Fatal(err)
	}
}

func events(t *testing.T, s *store.Store, messageID string) int {
	t.Helper()
	var n int
	if err := s.Reader().QueryRow(context.Background(), `SELECT COUNT(*) FROM message_events WHERE message_id = $1`, messageID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReleaseAndRejectHappenOnceAndAreAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		hook := &recordingHook{}
		q := policy.NewQuarantine(s, w.log, policy.QuarantineOptions{Now: w.clock, Hook: hook})
		ctx := context.Background()
		hold(t, q, s, w.a, "msg-1")
		hold(t, q, s, w.a, "msg-2")
		if _, err := q.Hold(ctx, s.Writer(), w.a, "msg-1", policy.Decision{}); !errors.Is(err, policy.ErrHeld) {
			t.Fatalf("second hold = %v, want ErrHeld", err)
		}

		w.now = t0.Add(time.Minute)
		rel, err := q.Release(ctx, w.ownerA, "msg-1")
		if err != nil {
			t.Fatal(err)
		}
		if rel.Status != policy.StatusReleased || rel.ReviewerID != "owner-a" || rel.ReviewedAt == nil || !rel.ReviewedAt.Equal(w.now) ||
			rel.RuleID != "rule-q" || len(rel.Reasons) != 2 {
			t.Fatalf("released = %+v", rel)
		}
		rej, err := q.Reject(ctx, w.ownerA, "msg-2")
		if err != nil || rej.Status != policy.StatusRejected {
			t.Fatalf("rejected = %+v, %v", rej, err)
		}
		for _, tc := range []struct {
			name string
			op   func(context.Context, string) error
			id   string
		}{
			{"release a released message", func(ctx context.Context, id string) error { _, err := q.Release(ctx, w.ownerA, id); return err }, "msg-1"},
			{"reject a released message", func(ctx context.Context, id string) error { _, err := q.Reject(ctx, w.ownerA, id); return err }, "msg-1"},
			{"release a rejected message", func(ctx context.Context, id string) error { _, err := q.Release(ctx, w.ownerA, id); return err }, "msg-2"},
		} {
			if err := tc.op(ctx, tc.id); !errors.Is(err, policy.ErrReviewed) {
				t.Errorf("%s: %v, want ErrReviewed", tc.name, err)
			}
		}
		if _, err := q.Release(ctx, w.ownerA, "msg-none"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("release of an unknown message: %v, want ErrNotFound", err)
		}
		if want := []string{"release acct-a msg-1", "reject acct-a msg-2"}; fmt.Sprint(hook.calls) != fmt.Sprint(want) {
			t.Errorf("hook calls = %q, want %q", hook.calls, want)
		}
		ev := w.audited(t, w.a, "quarantine.")
		if len(ev) != 2 || ev[0].Action != "quarantine.released" || ev[0].Target != "message:msg-1" || ev[0].Details["rule_id"] != "rule-q" ||
			ev[1].Action != "quarantine.rejected" || ev[1].ActorID != "owner-a" {
			t.Fatalf("audit = %+v", ev)
		}
	})
}

func TestReviewWithoutHookRecordsOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		q := policy.NewQuarantine(s, w.log, policy.QuarantineOptions{Now: w.clock})
		hold(t, q, s, w.a, "msg-1")
		if e, err := q.Release(context.Background(), w.ownerA, "msg-1"); err != nil || e.Status != policy.StatusReleased {
			t.Fatalf("release = %+v, %v", e, err)
		}
		if n := len(w.audited(t, w.a, "quarantine.released")); n != 1 {
			t.Errorf("%d audit events", n)
		}
	})
}

func TestFailingHookLeavesEntryPending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		hook := &recordingHook{fail: errors.New("queue unavailable")}
		q := policy.NewQuarantine(s, w.log, policy.QuarantineOptions{Now: w.clock, Hook: hook})
		ctx := context.Background()
		hold(t, q, s, w.a, "msg-1")
		if _, err := q.Release(ctx, w.ownerA, "msg-1"); err == nil {
			t.Fatal("release with a failing hook succeeded")
		}
		e, err := q.Get(ctx, w.a, "msg-1")
		if err != nil || e.Status != policy.StatusPending || e.ReviewedAt != nil {
			t.Fatalf("after a failed release: %+v, %v", e, err)
		}
		if n := events(t, s, "msg-1"); n != 0 {
			t.Errorf("the hook's write survived the rollback (%d events)", n)
		}
		if n := len(w.audited(t, w.a, "quarantine.")); n != 0 {
			t.Errorf("a failed release was audited as done (%d events)", n)
		}
		hook.fail = nil
		if _, err := q.Release(ctx, w.ownerA, "msg-1"); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if n := events(t, s, "msg-1"); n != 1 {
			t.Errorf("%d hook events after the retry, want 1", n)
		}
	})
}

func TestQuarantineListPagesAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		q := policy.NewQuarantine(s, w.log, policy.QuarantineOptions{Now: w.clock})
		ctx := context.Background()
		for i := range 5 {
			w.now = t0.Add(time.Duration(i) * time.Second)
			hold(t, q, s, w.a, fmt.Sprintf("msg-%d", i))
		}
		hold(t, q, s, w.b, "msg-b")
		if _, err := q.Reject(ctx, w.ownerA, "msg-1"); err != nil {
			t.Fatal(err)
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			page, err := q.List(ctx, w.a, policy.ListQuery{Cursor: cursor, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				got = append(got, e.MessageID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
		}
		if fmt.Sprint(got) != "[msg-0 msg-1 msg-2 msg-3 msg-4]" {
			t.Errorf("all pages = %v", got)
		}
		pending, err := q.List(ctx, w.a, policy.ListQuery{Status: policy.StatusPending})
		if err != nil || len(pending.Entries) != 4 || pending.NextCursor != "" {
			t.Fatalf("pending = %+v, %v", pending, err)
		}
		rejected, _ := q.List(ctx, w.a, policy.ListQuery{Status: policy.StatusRejected})
		if len(rejected.Entries) != 1 || rejected.Entries[0].MessageID != "msg-1" {
			t.Errorf("rejected = %+v", rejected.Entries)
		}
		if _, err := q.List(ctx, w.a, policy.ListQuery{Cursor: "%%%"}); !errors.Is(err, policy.ErrBadCursor) {
			t.Errorf("bad cursor: %v", err)
		}
	})
}

func TestQuarantineIsIsolatedByAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		q := policy.NewQuarantine(s, w.log, policy.QuarantineOptions{Now: w.clock, Hook: &recordingHook{}})
		ctx := context.Background()
		hold(t, q, s, w.a, "msg-a")
		page, err := q.List(ctx, w.b, policy.ListQuery{})
		if err != nil || len(page.Entries) != 0 {
			t.Fatalf("B lists %+v, %v", page.Entries, err)
		}
		if _, err := q.Get(ctx, w.b, "msg-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("B gets A's entry: %v", err)
		}
		if _, err := q.Release(ctx, w.ownerB, "msg-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("B releases A's entry: %v", err)
		}
		if _, err := q.Reject(ctx, w.ownerB, "msg-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("B rejects A's entry: %v", err)
		}
		if e, _ := q.Get(ctx, w.a, "msg-a"); e.Status != policy.StatusPending {
			t.Errorf("A's entry changed: %+v", e)
		}
	})
}

func TestConcurrentReviewsTakeEffectOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		hook := &countingHook{}
		q := policy.NewQuarantine(s, w.log, policy.QuarantineOptions{Now: w.clock, Hook: hook})
		hold(t, q, s, w.a, "msg-1")
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			go func() {
				var err error
				if i%2 == 0 {
					_, err = q.Release(context.Background(), w.ownerA, "msg-1")
				} else {
					_, err = q.Reject(context.Background(), w.ownerA, "msg-1")
				}
				errs <- err
			}()
		}
		ok := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				ok++
			case !errors.Is(err, policy.ErrReviewed):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 || hook.calls.Load() != 1 {
			t.Fatalf("%d reviews succeeded and the hook ran %d times, want 1 and 1", ok, hook.calls.Load())
		}
		if n := len(w.audited(t, w.a, "quarantine.")); n != 1 {
			t.Errorf("%d review audit events, want 1", n)
		}
	})
}

// countingHook counts its calls; it is safe for concurrent use.
type countingHook struct{ calls atomic.Int32 }

func (h *countingHook) Release(context.Context, store.Tx, string, string) error {
	h.calls.Add(1)
	return nil
}

func (h *countingHook) Reject(context.Context, store.Tx, string, string) error {
	h.calls.Add(1)
	return nil
}

package messages_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// cancelledEvents returns the recipient indexes of a message's cancelled
// events, in order, for the given account.
func (w *world) cancelledEvents(accountID, messageID string) []int {
	w.t.Helper()
	rows, err := w.db.Reader().Query(context.Background(), `SELECT rcpt_index FROM message_events
		WHERE account_id = $1 AND message_id = $2 AND type = 'cancelled' ORDER BY rcpt_index`, accountID, messageID)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func TestCancelRecordsOneCancelledEventPerCancelledRecipient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		w := newWorld(t, s, start)
		ctx := context.Background()
		A := w.a.Principal.AccountID
		from := "reminders@clinic.example"
		three := []string{"a@patient.example", "b@patient.example", "c@patient.example"}

		cases := []struct {
			name    string
			prepare func(id string) // leaves recipients as delivery would
			want    []int           // recipients cancelled (and with an event)
		}{
			{"every waiting recipient of a scheduled message", func(string) {}, []int{0, 1, 2}},
			{"a delivered recipient is left alone", func(id string) {
				w.outcome(id, 1, messages.StateDelivered, 1, 250)
			}, []int{0, 2}},
			{"deferred and quarantined recipients are cancelled", func(id string) {
				w.outcome(id, 0, messages.StateDeferred, 1, 451)
				w.exec("UPDATE message_recipients SET state = 'quarantined' WHERE message_id = $1 AND rcpt_index = 2", id)
			}, []int{0, 1, 2}},
			{"a recipient delivery holds right now is not", func(id string) {
				w.exec("UPDATE message_recipients SET lease_until = $1, lease_owner = 'node' WHERE message_id = $2 AND rcpt_index = 0",
					store.Micros(start.Add(time.Minute)), id)
			}, []int{1, 2}},
			{"nothing to cancel records nothing", func(id string) {
				for i := range 3 {
					w.outcome(id, i, messages.StateDelivered, 1, 250)
				}
			}, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				acc := w.send(w.a, from, three, nil, start.Add(time.Hour))
				c.prepare(acc.ID)
				ok, err := w.msgs.Cancel(ctx, A, acc.ID)
				if err != nil {
					t.Fatal(err)
				}
				if ok != (len(c.want) > 0) {
					t.Errorf("Cancel reported %v, want %v", ok, len(c.want) > 0)
				}
				if got := w.cancelledEvents(A, acc.ID); !slices.Equal(got, c.want) {
					t.Errorf("cancelled events for recipients %v, want %v", got, c.want)
				}
				m, err := w.msgs.Get(ctx, A, acc.ID)
				if err != nil {
					t.Fatal(err)
				}
				var states []int
				for i, r := range m.Recipients {
					if r.State == messages.StateCancelled {
						states = append(states, i)
					}
				}
				if !slices.Equal(states, c.want) {
					t.Errorf("cancelled recipients %v, want %v", states, c.want)
				}
				// A second cancel finds nothing more and records nothing.
				if ok, err := w.msgs.Cancel(ctx, A, acc.ID); err != nil || ok {
					t.Errorf("second cancel: %v %v", ok, err)
				}
				if got := w.cancelledEvents(A, acc.ID); !slices.Equal(got, c.want) {
					t.Errorf("after a second cancel: events for %v, want %v", got, c.want)
				}
			})
		}
	})
}

func TestCancelOfAnotherAccountsMessageChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		w := newWorld(t, s, start)
		ctx := context.Background()
		theirs := w.send(w.b, "news@other.example", []string{"a@patient.example"}, nil, start.Add(time.Hour))
		if ok, err := w.msgs.Cancel(ctx, w.a.Principal.AccountID, theirs.ID); err != nil || ok {
			t.Fatalf("cancel from another account: %v %v", ok, err)
		}
		for _, acct := range []string{w.a.Principal.AccountID, w.b.Principal.AccountID} {
			if got := w.cancelledEvents(acct, theirs.ID); len(got) != 0 {
				t.Errorf("account %s has cancelled events %v", acct, got)
			}
		}
		if m, _ := w.msgs.Get(ctx, w.b.Principal.AccountID, theirs.ID); m.Status == messages.StateCancelled {
			t.Error("the owner's message was cancelled")
		}
	})
}

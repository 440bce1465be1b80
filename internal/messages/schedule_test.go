package messages_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestScheduledMessagesAreListedByState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		w := newWorld(t, s, start)
		from := "reminders@clinic.example"
		now := w.send(w.a, from, []string{"a@patient.example"}, nil, time.Time{})
		later := w.send(w.a, from, []string{"b@patient.example"}, nil, start.Add(2*time.Hour))
		w.send(w.b, "news@other.example", []string{"c@patient.example"}, nil, start.Add(2*time.Hour))
		ctx := context.Background()
		cases := []struct {
			state string
			want  []string
		}{
			{messages.StateScheduled, []string{later.ID}},
			{messages.StateQueued, []string{now.ID}},
			{messages.StateDelivered, nil},
		}
		for _, c := range cases {
			page, err := w.msgs.List(ctx, w.a.Principal.AccountID, messages.Filter{State: c.state})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range page.Messages {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("state=%s lists %v, want %v", c.state, got, c.want)
			}
		}
		if _, err := w.msgs.List(ctx, w.a.Principal.AccountID, messages.Filter{State: "lost"}); !errors.Is(err, messages.ErrBadState) {
			t.Errorf("unknown state: %v", err)
		}
		// Once its time comes the message is queued, no longer scheduled.
		w.set(start.Add(2 * time.Hour))
		if page, _ := w.msgs.List(ctx, w.a.Principal.AccountID, messages.Filter{State: messages.StateScheduled}); len(page.Messages) != 0 {
			t.Errorf("a due message is still listed as scheduled")
		}
	})
}

func TestRescheduleMovesDeliveryToTheNewTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		w := newWorld(t, s, start)
		ctx := context.Background()
		A := w.a.Principal.AccountID
		acc := w.send(w.a, "reminders@clinic.example", []string{"a@patient.example", "b@patient.example"}, nil, start.Add(24*time.Hour))
		due := func(at time.Time) bool {
			t.Helper()
			w.set(at)
			d, err := w.engine.DueDomains(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			w.set(start)
			return slices.Contains(d, "patient.example")
		}
		if due(start.Add(2*time.Hour)) || !due(start.Add(24*time.Hour)) {
			t.Fatal("before rescheduling, delivery is due at send_at only")
		}

		// Later: nothing is due at the old time, everything at the new.
		newAt := start.Add(48 * time.Hour)
		m, err := w.msgs.Reschedule(ctx, A, acc.ID, newAt)
		if err != nil {
			t.Fatal(err)
		}
		if !m.SendAt.Equal(newAt) || m.Status != messages.StateScheduled || !m.Recipients[1].NextAttempt.Equal(newAt) {
			t.Errorf("rescheduled message: send_at %s, status %s", m.SendAt, m.Status)
		}
		if due(start.Add(24*time.Hour)) || !due(newAt) {
			t.Error("after rescheduling, delivery must be due at the new time only")
		}
		var events int
		if err := s.Reader().QueryRow(ctx, "SELECT COUNT(*) FROM message_events WHERE account_id = $1 AND message_id = $2 AND type = 'rescheduled'",
			A, acc.ID).Scan(&events); err != nil || events != 2 {
			t.Errorf("rescheduled events: %d %v", events, err)
		}
		// The composed message's Date header follows (RFC 5322 §3.6.1).
		var sealed []byte
		if err := s.Reader().QueryRow(ctx, "SELECT body_sealed FROM messages WHERE id = $1", acc.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		raw, err := w.vault.Open(ctx, A, sealed, messages.BodyAD(A, acc.ID))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte("Date: "+newAt.Format(time.RFC1123Z)+"\r\n")) || bytes.Count(raw, []byte("\r\nDate: ")) != 1 {
			t.Errorf("the Date header did not follow the new time:\n%s", raw[:bytes.Index(raw, []byte("\r\n\r\n"))])
		}

		// A past time means now: due at once, with the domain's job queued.
		var jobsBefore, jobsAfter int
		countJobs := func(n *int) {
			if err := s.Reader().QueryRow(ctx, "SELECT COUNT(*) FROM river_job WHERE kind = 'delivery.domain'").Scan(n); err != nil {
				t.Fatal(err)
			}
		}
		countJobs(&jobsBefore)
		if m, err = w.msgs.Reschedule(ctx, A, acc.ID, start.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		countJobs(&jobsAfter)
		if !m.SendAt.Equal(start) || m.Status != messages.StateQueued || !due(start) || jobsAfter != jobsBefore+1 {
			t.Errorf("rescheduled to the past: send_at %s, status %s, jobs %d -> %d", m.SendAt, m.Status, jobsBefore, jobsAfter)
		}
	})
}

func TestRescheduleIsRefusedOnceDeliveryBegan(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		w := newWorld(t, s, start)
		ctx := context.Background()
		A := w.a.Principal.AccountID
		from, to := "reminders@clinic.example", []string{"a@patient.example", "b@patient.example"}
		at := start.Add(time.Hour)
		attempted := w.send(w.a, from, to, nil, at)
		w.exec("UPDATE message_recipients SET state = 'deferred', attempts = 1 WHERE message_id = $1 AND rcpt_index = 1", attempted.ID)
		leased := w.send(w.a, from, to, nil, at)
		w.exec("UPDATE message_recipients SET lease_until = $1, lease_owner = 'node' WHERE message_id = $2 AND rcpt_index = 0",
			store.Micros(start.Add(time.Minute)), leased.ID)
		delivered := w.send(w.a, from, to, nil, time.Time{})
		w.outcome(delivered.ID, 0, messages.StateDelivered, 1, 250)
		w.outcome(delivered.ID, 1, messages.StateDelivered, 1, 250)
		cancelled := w.send(w.a, from, to, nil, at)
		if ok, err := w.msgs.Cancel(ctx, A, cancelled.ID); err != nil || !ok {
			t.Fatalf("cancel a scheduled message: %v %v", ok, err)
		}
		if m, _ := w.msgs.Get(ctx, A, cancelled.ID); m.Status != messages.StateCancelled {
			t.Errorf("cancelled scheduled message: status %s", m.Status)
		}
		fine := w.send(w.a, from, to, nil, at)
		theirs := w.send(w.b, "news@other.example", to, nil, at)

		cases := []struct {
			name string
			id   string
			at   time.Time
			want error
		}{
			{"refused after an attempt", attempted.ID, start.Add(2 * time.Hour), messages.ErrNotReschedulable},
			{"refused while delivery holds a recipient", leased.ID, start.Add(2 * time.Hour), messages.ErrNotReschedulable},
			{"refused once delivered", delivered.ID, start.Add(2 * time.Hour), messages.ErrNotReschedulable},
			{"refused once cancelled", cancelled.ID, start.Add(2 * time.Hour), messages.ErrNotReschedulable},
			{"another account's message is not found", theirs.ID, start.Add(2 * time.Hour), store.ErrNotFound},
			{"more than 30 days ahead", fine.ID, start.Add(31 * 24 * time.Hour), mail.ErrInvalid},
			{"no time", fine.ID, time.Time{}, mail.ErrInvalid},
		}
		for _, c := range cases {
			if _, err := w.msgs.Reschedule(ctx, A, c.id, c.at); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		// Nothing moved.
		for _, id := range []string{attempted.ID, leased.ID, fine.ID} {
			m, _ := w.msgs.Get(ctx, A, id)
			if !m.SendAt.Equal(at) {
				t.Errorf("a refused reschedule moved %s to %s", id, m.SendAt)
			}
		}
		if m, _ := w.msgs.Get(ctx, w.b.Principal.AccountID, theirs.ID); !m.SendAt.Equal(at) {
			t.Errorf("another account's message moved to %s", m.SendAt)
		}
	})
}

func TestReplaceDateKeepsTheRestOfTheMessage(t *testing.T) {
	t.Parallel()
	// Exercised through Reschedule above; here the header edge cases.
	at := time.Date(2026, 4, 2, 8, 30, 0, 0, time.UTC)
	cases := []struct {
		name, in, want string
	}{
		{"replaces the Date field", "From: a@x\r\nDate: Sun, 01 Mar 2026 09:00:00 +0000\r\nSubject: s\r\n\r\nDate: body\r\n",
			"From: a@x\r\nDate: Thu, 02 Apr 2026 08:30:00 +0000\r\nSubject: s\r\n\r\nDate: body\r\n"},
		{"drops folded continuation lines", "Date: Sun, 01 Mar 2026\r\n 09:00:00 +0000\r\nTo: b@y\r\n\r\nx",
			"Date: Thu, 02 Apr 2026 08:30:00 +0000\r\nTo: b@y\r\n\r\nx"},
		{"leaves a message without Date alone", "From: a@x\r\n\r\nDate: body", "From: a@x\r\n\r\nDate: body"},
	}
	for _, c := range cases {
		if got := messages.ReplaceDateForTest([]byte(c.in), at); string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func FuzzReplaceDate(f *testing.F) {
	f.Add([]byte("From: a@x\r\nDate: Sun, 01 Mar 2026 09:00:00 +0000\r\n\r\nbody"))
	f.Add([]byte("Date: x\r\n \r\n\t\r\n\r\n"))
	f.Add([]byte("date:\r\n"))
	at := time.Date(2026, 4, 2, 8, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := messages.ReplaceDateForTest(raw, at)
		if bytes.Equal(out, raw) {
			return
		}
		end := bytes.Index(raw, []byte("\r\n\r\n"))
		if end < 0 {
			t.Fatal("a message without a header section was changed")
		}
		if !bytes.Contains(out, []byte("Date: "+at.Format(time.RFC1123Z)+"\r\n")) {
			t.Fatalf("changed without the new Date: %q", out)
		}
		// The body is untouched.
		if !bytes.HasSuffix(out, raw[end:]) {
			t.Fatalf("the body changed: %q -> %q", raw, out)
		}
	})
}

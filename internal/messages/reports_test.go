package messages_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// day1 is the first day of the crafted report range.
var day1 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// reportWorld crafts messages over two days of account A (and noise
// before, after and in account B) with known outcomes:
//
//	day 1, 10:00  m1 a: delivered, opened twice, clicked; b: hard bounce (550); tag reminder
//	              m2 c: deferred once then delivered, opened once
//	              m3 d: suppressed
//	day 2, 10:00  m4 e: deferred 3 times then soft bounce (421); f: failed
//	              m5 g: scheduled two days ahead
//	              m6 h: cancelled
//	outside       one message the day before and one the day after; B's message on day 1, delivered and opened
func reportWorld(t *testing.T, s *store.Store) (*world, map[string]messages.Accepted) {
	w := newWorld(t, s, day1.Add(10*time.Hour))
	ctx := context.Background()
	A, from := w.a.Principal.AccountID, "reminders@clinic.example"
	m := map[string]messages.Accepted{}
	if _, err := w.msgs.AddSuppression(ctx, A, "d@patient.example"); err != nil {
		t.Fatal(err)
	}
	w.set(day1.Add(-14 * time.Hour))
	m["before"] = w.send(w.a, from, []string{"x@patient.example"}, nil, time.Time{})
	w.set(day1.Add(10 * time.Hour))
	m["m1"] = w.send(w.a, from, []string{"a@patient.example", "b@patient.example"}, []string{"reminder"}, time.Time{})
	m["m2"] = w.send(w.a, from, []string{"c@patient.example"}, nil, time.Time{})
	m["m3"] = w.send(w.a, from, []string{"d@patient.example"}, nil, time.Time{})
	m["other"] = w.send(w.b, "news@other.example", []string{"a@patient.example"}, nil, time.Time{})
	w.outcome(m["m1"].ID, 0, messages.StateDelivered, 1, 250)
	w.event(A, m["m1"].ID, 0, messages.EventOpened)
	w.event(A, m["m1"].ID, 0, messages.EventOpened)
	w.event(A, m["m1"].ID, 0, messages.EventClicked)
	w.outcome(m["m1"].ID, 1, messages.StateBounced, 1, 550)
	w.event(A, m["m2"].ID, 0, messages.StateDeferred)
	w.outcome(m["m2"].ID, 0, messages.StateDelivered, 2, 250)
	w.event(A, m["m2"].ID, 0, messages.EventOpened)
	B := w.b.Principal.AccountID
	w.outcome(m["other"].ID, 0, messages.StateDelivered, 1, 250)
	w.event(B, m["other"].ID, 0, messages.EventOpened)
	w.event(B, m["other"].ID, 0, messages.EventComplained)

	w.set(day1.Add(34 * time.Hour))
	m["m4"] = w.send(w.a, from, []string{"e@patient.example", "f@patient.example"}, nil, time.Time{})
	m["m5"] = w.send(w.a, from, []string{"g@patient.example"}, nil, w.now().Add(48*time.Hour))
	m["m6"] = w.send(w.a, from, []string{"h@patient.example"}, nil, time.Time{})
	for range 3 {
		w.event(A, m["m4"].ID, 0, messages.StateDeferred)
	}
	w.outcome(m["m4"].ID, 0, messages.StateBounced, 4, 421)
	w.outcome(m["m4"].ID, 1, messages.StateFailed, 1, 0)
	if ok, err := w.msgs.Cancel(ctx, A, m["m6"].ID); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	w.set(day1.Add(72 * time.Hour))
	m["after"] = w.send(w.a, from, []string{"y@patient.example"}, nil, time.Time{})
	w.set(day1.Add(40 * time.Hour))
	return w, m
}

func TestReportCountsTheCraftedMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w, _ := reportWorld(t, s)
		ctx := context.Background()
		A := w.a.Principal.AccountID
		sum, err := w.msgs.Summarize(ctx, A, messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour), GroupBy: messages.GroupDay})
		if err != nil {
			t.Fatal(err)
		}
		want1 := messages.Counts{Accepted: 3, Recipients: 4, Sent: 3, Delivered: 2, Deferred: 1, Bounced: 1, BouncedHard: 1,
			Suppressed: 1, Opened: messages.Engagement{Unique: 2, Total: 3}, Clicked: messages.Engagement{Unique: 1, Total: 1}}
		want2 := messages.Counts{Accepted: 3, Recipients: 4, Sent: 2, Deferred: 1, Bounced: 1, BouncedSoft: 1, Failed: 1,
			Cancelled: 1, Pending: 1}
		if len(sum.Buckets) != 2 || sum.NextCursor != nil {
			t.Fatalf("buckets: %+v", sum)
		}
		cases := []struct {
			name string
			got  messages.Bucket
			want messages.Counts
			rate messages.Rates
			from time.Time
		}{
			{"day 1 counts delivered, bounced, deferred-once, suppressed and opens", sum.Buckets[0], want1,
				messages.Rates{Delivery: 0.6667, Bounce: 0.3333, Open: 1, Click: 0.5}, day1},
			{"day 2 counts soft bounces, failures, cancels and the scheduled one", sum.Buckets[1], want2,
				messages.Rates{Bounce: 0.5}, day1.Add(24 * time.Hour)},
		}
		for _, c := range cases {
			if c.got.Counts != c.want {
				t.Errorf("%s:\n got %+v\nwant %+v", c.name, c.got.Counts, c.want)
			}
			if c.got.Rates != c.rate {
				t.Errorf("%s: rates %+v, want %+v", c.name, c.got.Rates, c.rate)
			}
			if !c.got.Start.Equal(c.from) || !c.got.End.Equal(c.from.Add(24*time.Hour)) {
				t.Errorf("%s: bucket %s to %s", c.name, c.got.Start, c.got.End)
			}
		}
		if sum.Totals.Counts.Accepted != 6 || sum.Totals.Counts.Recipients != 8 || sum.Totals.Counts.Bounced != 2 {
			t.Errorf("totals: %+v", sum.Totals.Counts)
		}

		// Filters.
		tagged, err := w.msgs.Summarize(ctx, A, messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour), GroupBy: messages.GroupNone, Tag: "reminder"})
		if err != nil || len(tagged.Buckets) != 1 || tagged.Totals.Counts.Accepted != 1 || tagged.Totals.Counts.Recipients != 2 ||
			tagged.Totals.Counts.Opened.Total != 2 {
			t.Errorf("tag filter: %+v %v", tagged.Totals.Counts, err)
		}
		byDomain, err := w.msgs.Summarize(ctx, A, messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour), GroupBy: messages.GroupNone, Domain: "other.example"})
		if err != nil || byDomain.Totals.Counts != (messages.Counts{}) {
			t.Errorf("another account's sending domain counts for this one: %+v %v", byDomain.Totals.Counts, err)
		}
		mine, err := w.msgs.Summarize(ctx, A, messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour), GroupBy: messages.GroupNone, Domain: "Clinic.Example"})
		if err != nil || mine.Totals.Counts != sum.Totals.Counts {
			t.Errorf("domain filter: %+v %v", mine.Totals.Counts, err)
		}

		// Tenant isolation: B sees only its own message.
		other, err := w.msgs.Summarize(ctx, w.b.Principal.AccountID, messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour)})
		if err != nil || other.Totals.Counts.Accepted != 1 || other.Totals.Counts.Opened.Unique != 1 || other.Totals.Counts.Complained.Total != 1 {
			t.Errorf("account B: %+v %v", other.Totals.Counts, err)
		}
	})
}

func TestReportPagesCoverEveryBucketOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w, _ := reportWorld(t, s)
		ctx := context.Background()
		A := w.a.Principal.AccountID
		q := messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour), GroupBy: messages.GroupHour, Limit: 10}
		var buckets []messages.Bucket
		var totals []messages.Counts
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("the pages never end")
			}
			sum, err := w.msgs.Summarize(ctx, A, q)
			if err != nil {
				t.Fatal(err)
			}
			buckets = append(buckets, sum.Buckets...)
			totals = append(totals, sum.Totals.Counts)
			if sum.NextCursor == nil {
				break
			}
			q.Cursor = *sum.NextCursor
		}
		if len(buckets) != 48 || len(totals) != 5 {
			t.Fatalf("%d buckets over %d pages, want 48 over 5", len(buckets), len(totals))
		}
		var accepted int64
		for i, b := range buckets {
			if !b.Start.Equal(day1.Add(time.Duration(i) * time.Hour)) {
				t.Errorf("bucket %d starts %s", i, b.Start)
			}
			accepted += b.Counts.Accepted
			if (i == 10 || i == 34) != (b.Counts.Accepted == 3) {
				t.Errorf("bucket %d: %d accepted", i, b.Counts.Accepted)
			}
		}
		for _, tot := range totals {
			if tot != totals[0] || tot.Accepted != accepted {
				t.Errorf("totals differ across pages: %+v", totals)
			}
		}
	})
}

func TestReportRefusesBadRangesAndCursors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, day1)
		A := w.a.Principal.AccountID
		cases := []struct {
			name string
			q    messages.ReportQuery
			want error
		}{
			{"to before from", messages.ReportQuery{From: day1, To: day1.Add(-time.Hour)}, messages.ErrBadRange},
			{"empty range", messages.ReportQuery{From: day1, To: day1}, messages.ErrBadRange},
			{"more than 93 days", messages.ReportQuery{From: day1, To: day1.Add(94 * 24 * time.Hour)}, messages.ErrBadRange},
			{"unknown granularity", messages.ReportQuery{From: day1, To: day1.Add(time.Hour), GroupBy: "week"}, messages.ErrBadRange},
			{"garbage cursor", messages.ReportQuery{From: day1, To: day1.Add(time.Hour), Cursor: "!!"}, messages.ErrBadCursor},
			{"cursor outside the range", messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour), Cursor: "Yi8x"}, messages.ErrBadCursor},
		}
		for _, c := range cases {
			if _, err := w.msgs.Summarize(context.Background(), A, c.q); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		if _, err := w.msgs.RecipientRows(context.Background(), A, messages.ReportQuery{From: day1, To: day1.Add(time.Hour), Cursor: "eA"}); !errors.Is(err, messages.ErrBadCursor) {
			t.Errorf("rows with a bad cursor: %v", err)
		}
	})
}

func TestRecipientRowsPagesCoverEveryRowOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w, m := reportWorld(t, s)
		ctx := context.Background()
		q := messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour), Limit: 3}
		seen := map[string]int{}
		var rows []messages.RecipientRow
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("the pages never end")
			}
			page, err := w.msgs.RecipientRows(ctx, w.a.Principal.AccountID, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Rows) > 3 {
				t.Fatalf("a page of %d rows", len(page.Rows))
			}
			rows = append(rows, page.Rows...)
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		for _, r := range rows {
			seen[r.MessageID+" "+r.Recipient]++
		}
		if len(rows) != 8 || len(seen) != 8 {
			t.Fatalf("%d rows, %d distinct, want 8 (%v)", len(rows), len(seen), seen)
		}
		for i := 1; i < len(rows); i++ {
			if rows[i].CreatedAt.Before(rows[i-1].CreatedAt) {
				t.Errorf("row %d is older than row %d", i, i-1)
			}
		}
		byAddr := map[string]messages.RecipientRow{}
		for _, r := range rows {
			byAddr[r.Recipient] = r
		}
		checks := []struct {
			name  string
			addr  string
			state string
			ok    func(messages.RecipientRow) bool
		}{
			{"a delivered row carries its evidence and tags", "a@patient.example", messages.StateDelivered, func(r messages.RecipientRow) bool {
				return r.DeliveredAt != nil && r.SMTPCode == 250 && r.RemoteHost == "mx.patient.example" && r.TLSVersion == "TLS 1.3" &&
					len(r.Tags) == 1 && r.Tags[0] == "reminder" && r.MessageID == m["m1"].ID && r.From == "reminders@clinic.example"
			}},
			{"a hard bounce keeps its code", "b@patient.example", messages.StateBounced, func(r messages.RecipientRow) bool { return r.SMTPCode == 550 }},
			{"a future send is scheduled", "g@patient.example", messages.StateScheduled, func(r messages.RecipientRow) bool { return r.Attempts == 0 }},
			{"a cancelled row", "h@patient.example", messages.StateCancelled, func(r messages.RecipientRow) bool { return r.DeliveredAt == nil }},
		}
		for _, c := range checks {
			r, ok := byAddr[c.addr]
			if !ok || r.State != c.state || !c.ok(r) {
				t.Errorf("%s: %+v", c.name, r)
			}
		}
		// B's rows never appear in A's export and the other way round.
		page, err := w.msgs.RecipientRows(ctx, w.b.Principal.AccountID, messages.ReportQuery{From: day1, To: day1.Add(48 * time.Hour)})
		if err != nil || len(page.Rows) != 1 || page.Rows[0].MessageID != m["other"].ID {
			t.Errorf("account B's rows: %+v %v", page.Rows, err)
		}
	})
}

package webhooks_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/api/apitest"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/webhooks"
)

// The subscribable types are the producers' own names: a producer
// renaming one must not silently stop its webhooks.
func TestSubscribableTypesAreTheProducersNames(t *testing.T) {
	t.Parallel()
	produced := []string{
		messages.StateQueued, messages.StateScheduled, messages.EventRescheduled, messages.StateQuarantined,
		messages.StateDelivered, messages.StateDeferred, messages.StateBounced, messages.StateSuppressed, messages.StateFailed,
		messages.StateCancelled, messages.EventOpened, messages.EventClicked, messages.EventUnsubscribed, messages.EventComplained,
		portal.EventDeposited, portal.EventNotified, portal.EventCodeSent, portal.EventCodeFailed, portal.EventLocked,
		portal.EventSignedIn, portal.EventViewed, portal.EventDownloaded, portal.EventReplied, portal.EventSignedOut,
		portal.EventIdleTimeout, portal.EventRecalled, portal.EventExpired,
	}
	got := webhooks.EventTypes()
	slices.Sort(got)
	slices.Sort(produced)
	if !slices.Equal(got, produced) {
		t.Errorf("EventTypes() = %v\nproducers write %v", got, produced)
	}
}

// The contract's WebhookEventType lists exactly the subscribable types.
func TestContractListsTheSubscribableTypes(t *testing.T) {
	t.Parallel()
	c, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, v := range c.Schema("WebhookEventType").Enum {
		enum = append(enum, v.(string))
	}
	got := webhooks.EventTypes()
	slices.Sort(got)
	slices.Sort(enum)
	if !slices.Equal(got, enum) {
		t.Errorf("EventTypes() = %v\nWebhookEventType enum = %v", got, enum)
	}
}

func TestUnknownAndTestTypesCannotBeSubscribed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t)
		for _, bad := range []string{"exploded", webhooks.EventPing, "portal_", "Portal_viewed", "released", ""} {
			_, err := w.svc.Create(context.Background(), w.a, webhooks.Spec{URL: r.URL, Events: []string{webhooks.EventPortalViewed, bad}})
			var fe *webhooks.FieldError
			if !errors.As(err, &fe) || fe.Field != "events[1]" || !strings.Contains(fe.Message, "unknown event type") {
				t.Errorf("subscribing to %q: %v", bad, err)
			}
		}
		h := w.create(w.a, r.URL, webhooks.EventPortalViewed, webhooks.EventQuarantined, webhooks.EventRescheduled)
		if !slices.Equal(h.Events, []string{webhooks.EventPortalViewed, webhooks.EventQuarantined, webhooks.EventRescheduled}) {
			t.Errorf("events %v", h.Events)
		}
	})
}

// pipeline is the acceptance path behind the webhooks world: messages
// with the real DLP scanner, policy rules, quarantine, encryption
// decisions and portal, on the world's clock.
type pipeline struct {
	msgs   *messages.Service
	hold   *policy.QuarantineStore
	rules  *policy.Engine
	decide *secureline.Service
	portal *portal.Service
}

// noNotices is a portal notifier for tests that never run the notice job.
type noNotices struct{}

func (noNotices) Notify(context.Context, portal.Notice) (string, error) {
	return "", errors.New("no notices in this test")
}

func newPipeline(t *testing.T, w *world) *pipeline {
	t.Helper()
	ctx := context.Background()
	d := domains.New(w.db, w.vault, resolve.New([]string{"127.0.0.1:1"}), w.log, "mta.clinic.example")
	if _, err := d.Register(ctx, w.a, "clinic.example", true); err != nil {
		t.Fatal(err)
	}
	if err := queue.Migrate(ctx, w.db, nil); err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(w.db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scanner, err := dlp.New(dlp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{decide: secureline.New(w.db, secureline.Options{Now: w.now})}
	if p.rules, err = policy.New(w.db, nil, policy.Options{Now: w.now}); err != nil {
		t.Fatal(err)
	}
	if p.portal, err = portal.New(ctx, w.db, w.vault, w.master, q, w.log, noNotices{},
		portal.Options{BaseURL: "https://mail.clinic.example", Now: w.now}); err != nil {
		t.Fatal(err)
	}
	if err := queue.AddWorker(q, &portal.NotifyWorker{Service: p.portal}); err != nil {
		t.Fatal(err)
	}
	sl := &messages.SecureLine{Scanner: scanner, Policies: p.rules, Decisions: p.decide, Portal: p.portal}
	p.msgs = messages.New(w.db, w.vault, d, q, messages.Options{Lifetime: 24 * time.Hour, Now: w.now, SecureLine: sl})
	p.hold = policy.NewQuarantine(w.db, nil, policy.QuarantineOptions{Now: w.now, Hook: p.msgs})
	sl.Quarantine = p.hold
	return p
}

// The customer-meaningful events of quarantine, scheduling and the
// portal reach a subscribed endpoint signed, with the producer's type and
// the recipient, and never with the message's content.
func TestQuarantinePortalAndScheduleEventsAreDelivered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		p := newPipeline(t, w)
		ctx := context.Background()
		r := newReceiver(t)
		h := w.create(w.a, r.URL, webhooks.EventQuarantined, webhooks.EventPortalDeposited, webhooks.EventRescheduled,
			webhooks.EventCancelled)
		r.setSecret(h.Secret)
		other := newReceiver(t) // another account's endpoint hears nothing of it
		o := w.create(w.b, other.URL, webhooks.EventQuarantined, webhooks.EventPortalDeposited, webhooks.EventRescheduled,
			webhooks.EventCancelled)
		other.setSecret(o.Secret)

		// A quarantined message released into the portal.
		if _, err := p.rules.Replace(ctx, w.a, []policy.RuleInput{{Name: "hold", Conditions: policy.Conditions{Tags: []string{"holdme"}},
			Action: policy.Quarantine}}); err != nil {
			t.Fatal(err)
		}
		if err := p.decide.SetSettings(ctx, w.a, secureline.Settings{Mode: secureline.ModePortalAlways, SubjectTag: "[secure]"}); err != nil {
			t.Fatal(err)
		}
		held, err := p.msgs.Send(ctx, w.a, messages.Request{From: "results@clinic.example", To: []string{"pat@patient.example"},
			Subject: "HbA1c results", Text: "Patient SSN 205-89-4542.", Tags: []string{"holdme"}}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.hold.Release(ctx, w.a, held.ID); err != nil {
			t.Fatal(err)
		}
		// A scheduled message moved, then cancelled.
		later, err := p.msgs.Send(ctx, w.a, messages.Request{From: "results@clinic.example", To: []string{"lee@patient.example"},
			Subject: "Reminder", Text: "See you.", SendAt: w.now().Add(time.Hour)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.msgs.Reschedule(ctx, w.a.Principal.AccountID, later.ID, w.now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if ok, err := p.msgs.Cancel(ctx, w.a.Principal.AccountID, later.ID); err != nil || !ok {
			t.Fatalf("cancel: %v %v", ok, err)
		}

		w.dispatch()
		want := []struct{ typ, message, recipient string }{
			{webhooks.EventQuarantined, held.ID, "pat@patient.example"},
			{webhooks.EventPortalDeposited, held.ID, "pat@patient.example"},
			{webhooks.EventRescheduled, later.ID, "lee@patient.example"},
			{webhooks.EventCancelled, later.ID, "lee@patient.example"},
		}
		// Sent concurrently: put them in the order of want (one of each type).
		got := r.requests()
		rank := func(x received) int {
			return slices.IndexFunc(want, func(w struct{ typ, message, recipient string }) bool { return w.typ == x.typ })
		}
		slices.SortFunc(got, func(a, b received) int { return rank(a) - rank(b) })
		if len(got) != len(want) {
			t.Fatalf("receiver got %d requests, want %d", len(got), len(want))
		}
		for i, g := range got {
			wt := want[i]
			if g.verified != nil {
				t.Errorf("%s: signature does not verify: %v", wt.typ, g.verified)
			}
			if g.typ != wt.typ || g.payload.Type != wt.typ || g.payload.Message == nil || g.payload.Message.ID != wt.message ||
				g.payload.Recipient != wt.recipient || g.payload.WebhookID != h.ID {
				t.Errorf("request %d: type header %q, payload %s; want %s of %s to %s", i, g.typ, g.body, wt.typ, wt.message, wt.recipient)
			}
			for _, secret := range []string{"HbA1c", "205-89-4542", "Reminder", "See you"} {
				if strings.Contains(string(g.body), secret) {
					t.Errorf("%s payload carries content %q: %s", wt.typ, secret, g.body)
				}
			}
		}
		dep := got[1].payload.Details
		if id, _ := dep["portal_message_id"].(string); id == "" || dep["attachments"] != float64(0) {
			t.Errorf("portal_deposited details %v", dep)
		}
		if got[2].payload.Details["send_at"] != w.now().Add(2*time.Hour).UTC().Format(time.RFC3339) {
			t.Errorf("rescheduled details %v", got[2].payload.Details)
		}
		if n := len(other.requests()); n != 0 {
			t.Errorf("another account's endpoint got %d requests", n)
		}
	})
}

package webhooks_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/webhooks"
	"github.com/sealpost/sealpost/pkg/webhook"
)

func TestSubscribedEventsArriveSignedOnceEach(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t)
		h := w.create(w.a, r.URL+"/hooks?token=abc", webhooks.EventDelivered, webhooks.EventBounced)
		r.setSecret(h.Secret)
		if !strings.HasPrefix(h.Secret, "whsec_") || len(h.Secret) < 40 {
			t.Fatalf("secret %q", h.Secret)
		}

		msg := w.message(w.a, "pat@patient.example")
		delivered := w.event(w.a, msg, webhooks.EventDelivered)
		w.event(w.a, msg, webhooks.EventDeferred) // not subscribed
		bounced := w.event(w.a, msg, webhooks.EventBounced)
		if n := w.dispatch(); n != 2 {
			t.Fatalf("dispatch attempted %d deliveries, want 2", n)
		}
		got := r.requests() // sent concurrently: in any order
		if len(got) != 2 {
			t.Fatalf("receiver got %d requests, want 2", len(got))
		}
		slices.SortFunc(got, func(a, b received) int { return strings.Compare(a.eventID, b.eventID) })
		for i, want := range []string{delivered, bounced} {
			g := got[i]
			if g.verified != nil {
				t.Errorf("request %d: signature does not verify: %v (%s)", i, g.verified, g.header)
			}
			if g.eventID != want || g.payload.ID != want {
				t.Errorf("request %d: event id header %q, payload %q, want %q", i, g.eventID, g.payload.ID, want)
			}
		}
		p := got[0].payload
		if p.Type != "delivered" || p.Recipient != "pat@patient.example" || p.WebhookID != h.ID || p.Message == nil ||
			p.Message.ID != msg || p.Message.Tags[0] != "reminder" || p.Message.Metadata["appointment"] != "apt-42" ||
			p.Details["smtp_code"] != float64(250) || p.Details["remote_host"] != "mx.patient.example" || p.Details["tls_version"] != "TLS 1.3" {
			t.Errorf("payload %s", got[0].body)
		}
		if strings.Contains(string(got[0].body), "subject") || strings.Contains(string(got[0].body), "body") {
			t.Errorf("payload carries message content: %s", got[0].body)
		}

		// The cursor moved: nothing is sent twice, and a new event is
		// picked up on the next run.
		if n := w.dispatch(); n != 0 || len(r.requests()) != 2 {
			t.Fatalf("second run attempted %d, receiver has %d", n, len(r.requests()))
		}
		w.event(w.a, msg, webhooks.EventDelivered)
		w.dispatch()
		if len(r.requests()) != 3 || len(r.unique) != 3 {
			t.Fatalf("receiver has %d requests, %d unique", len(r.requests()), len(r.unique))
		}
		log := w.deliveries(w.a, h.ID)
		if len(log) != 3 || log[0].Status != webhooks.StatusSucceeded || log[0].LastStatus != 200 || log[0].Attempts != 1 ||
			log[0].LastResponse != "thanks? for the event" {
			t.Errorf("log %+v", log)
		}
	})
}

func TestEventsBeforeTheWebhookAndOfDisabledOnesAreNotSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t)
		msg := w.message(w.a, "pat@patient.example")
		w.event(w.a, msg, webhooks.EventDelivered) // before any webhook
		w.advance(time.Millisecond)
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		off := false
		if _, err := w.svc.Update(context.Background(), w.a, h.ID, webhooks.Change{Enabled: &off}); err != nil {
			t.Fatal(err)
		}
		w.event(w.a, msg, webhooks.EventDelivered) // while disabled
		w.dispatch()
		on := true
		if _, err := w.svc.Update(context.Background(), w.a, h.ID, webhooks.Change{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		w.dispatch()
		if n := len(r.requests()); n != 0 {
			t.Fatalf("receiver got %d requests, want none", n)
		}
		last := w.event(w.a, msg, webhooks.EventDelivered)
		w.dispatch()
		if got := r.requests(); len(got) != 1 || got[0].eventID != last {
			t.Fatalf("receiver got %d requests", len(got))
		}
	})
}

func TestRetryAfterAServerErrorKeepsTheEventID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t, http.StatusInternalServerError, http.StatusFound)
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		r.setSecret(h.Secret)
		id := w.event(w.a, w.message(w.a, "pat@patient.example"), webhooks.EventDelivered)

		w.dispatch()
		d := w.deliveries(w.a, h.ID)[0]
		if d.Status != webhooks.StatusRetrying || d.Attempts != 1 || d.LastStatus != 500 || d.LastError != "HTTP 500" ||
			d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(w.now().Add(30*time.Second)) {
			t.Fatalf("after a 500: %+v", d)
		}
		if n := w.dispatch(); n != 0 {
			t.Fatalf("retried before the backoff: %d", n)
		}
		// The redirect is not followed (it points at cloud metadata).
		w.advance(30 * time.Second)
		w.dispatch()
		d = w.deliveries(w.a, h.ID)[0]
		if d.Status != webhooks.StatusRetrying || d.LastStatus != 302 || !strings.Contains(d.LastError, "redirects are not followed") ||
			!d.NextAttemptAt.Equal(w.now().Add(60*time.Second)) {
			t.Fatalf("after a 302: %+v", d)
		}
		w.advance(60 * time.Second)
		w.dispatch()
		d = w.deliveries(w.a, h.ID)[0]
		if d.Status != webhooks.StatusSucceeded || d.Attempts != 3 || d.NextAttemptAt != nil {
			t.Fatalf("after a 200: %+v", d)
		}
		got := r.requests()
		if len(got) != 3 {
			t.Fatalf("receiver got %d requests", len(got))
		}
		for _, g := range got {
			if g.eventID != id || g.payload.ID != id || g.verified != nil {
				t.Errorf("attempt with event id %q / %q, verified %v; want %q", g.eventID, g.payload.ID, g.verified, id)
			}
		}
		if len(r.unique) != 1 {
			t.Errorf("receiver saw %d distinct events, want 1", len(r.unique))
		}
		for outcome, want := range map[string]float64{"retrying": 2, "succeeded": 1, "failed": 0} {
			if got := w.metric("sealpost_webhook_deliveries_total", "outcome", outcome); got != want {
				t.Errorf("deliveries{outcome=%q} = %v, want %v", outcome, got, want)
			}
		}
		if got := w.metric("sealpost_webhook_queue_depth", "status", "retrying"); got != 0 {
			t.Errorf("queue depth after success: %v", got)
		}
	})
}

func TestQueueMetricsShowWaitingDeliveries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t, 500)
		w.create(w.a, r.URL, webhooks.EventDelivered)
		msg := w.message(w.a, "pat@patient.example")
		w.event(w.a, msg, webhooks.EventDelivered)
		w.dispatch()
		w.event(w.a, msg, webhooks.EventDelivered)
		if _, err := w.svc.FanOut(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.advance(time.Minute)
		if got := w.metric("sealpost_webhook_queue_depth", "status", "retrying"); got != 1 {
			t.Errorf("retrying depth %v, want 1", got)
		}
		if got := w.metric("sealpost_webhook_queue_depth", "status", "pending"); got != 1 {
			t.Errorf("pending depth %v, want 1", got)
		}
		if got := w.metric("sealpost_webhook_queue_lag_seconds", "", ""); got < 30 {
			t.Errorf("lag %v, want at least 30s", got)
		}
		if got := w.metric("sealpost_webhook_events_fanned_out_total", "", ""); got != 2 {
			t.Errorf("fanned out %v, want 2", got)
		}
	})
}

func TestPruneDeletesOnlyOldFinishedDeliveries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t, 200, 500)
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		msg := w.message(w.a, "pat@patient.example")
		w.event(w.a, msg, webhooks.EventDelivered)
		w.event(w.a, msg, webhooks.EventDelivered)
		w.dispatch() // one succeeded, one retrying
		n, err := w.svc.Prune(context.Background(), w.now().Add(time.Second))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want 1", n, err)
		}
		if log := w.deliveries(w.a, h.ID); len(log) != 1 || log[0].Status != webhooks.StatusRetrying {
			t.Fatalf("left %+v", log)
		}
	})
}

func TestGivingUpMarksTheDeliveryFailed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		t.Run("after the retry window", func(t *testing.T) {
			w := newWorld(t, s)
			r := newReceiver(t, 503, 503, 503)
			h := w.create(w.a, r.URL, webhooks.EventDelivered)
			w.event(w.a, w.message(w.a, "pat@patient.example"), webhooks.EventDelivered)
			w.dispatch()
			w.advance(23*time.Hour + 59*time.Minute)
			w.dispatch()
			d := w.deliveries(w.a, h.ID)[0]
			if d.Status != webhooks.StatusFailed || d.Attempts != 2 || d.NextAttemptAt != nil || d.LastStatus != 503 {
				t.Fatalf("after 24 hours: %+v", d)
			}
			w.advance(48 * time.Hour)
			if n := w.dispatch(); n != 0 {
				t.Fatalf("a failed delivery was attempted again: %d", n)
			}
		})
		t.Run("after the last attempt", func(t *testing.T) {
			w := newWorld(t, storetest.Open(t, s.Dialect()), func(o *webhooks.Options) { o.MaxAttempts = 3 })
			r := newReceiver(t, 500, 500, 500, 500)
			h := w.create(w.a, r.URL, webhooks.EventDelivered)
			w.event(w.a, w.message(w.a, "pat@patient.example"), webhooks.EventDelivered)
			for range 5 {
				w.dispatch()
				w.advance(time.Hour)
			}
			d := w.deliveries(w.a, h.ID)[0]
			if d.Status != webhooks.StatusFailed || d.Attempts != 3 || len(r.requests()) != 3 {
				t.Fatalf("after 3 attempts: %+v, %d requests", d, len(r.requests()))
			}
		})
	})
}

func TestReplaySendsTheSameEventAgainNow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, func(o *webhooks.Options) { o.MaxAttempts = 1 })
		r := newReceiver(t, 500)
		h := w.create(w.a, r.URL, webhooks.EventBounced)
		r.setSecret(h.Secret)
		id := w.event(w.a, w.message(w.a, "pat@patient.example"), webhooks.EventBounced)
		w.dispatch()
		if d := w.deliveries(w.a, h.ID)[0]; d.Status != webhooks.StatusFailed {
			t.Fatalf("not failed: %+v", d)
		}
		d, err := w.svc.Replay(context.Background(), w.a.Principal.AccountID, h.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != id || d.Status != webhooks.StatusSucceeded || d.Attempts != 2 || d.LastStatus != 200 {
			t.Fatalf("replayed: %+v", d)
		}
		got := r.requests()
		if len(got) != 2 || got[1].eventID != id || got[1].verified != nil {
			t.Fatalf("receiver: %+v", got)
		}
		if _, err := w.svc.Replay(context.Background(), w.a.Principal.AccountID, h.ID, store.NewID()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("replay of an unknown delivery: %v", err)
		}
	})
}

func TestTestSendsASignedPing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t, 200, 500)
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		r.setSecret(h.Secret)
		d, err := w.svc.Test(context.Background(), w.a.Principal.AccountID, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := r.requests()
		if d.Status != webhooks.StatusSucceeded || d.EventType != "ping" || len(got) != 1 || got[0].verified != nil ||
			got[0].payload.Type != "ping" || got[0].payload.ID != d.ID || got[0].payload.Message != nil {
			t.Fatalf("ping: %+v, %d requests", d, len(got))
		}
		// A failed ping is not retried.
		d, err = w.svc.Test(context.Background(), w.a.Principal.AccountID, h.ID)
		if err != nil || d.Status != webhooks.StatusFailed || d.LastStatus != 500 {
			t.Fatalf("failed ping: %+v %v", d, err)
		}
	})
}

func TestRotationSignsWithBothSecretsForTheOverlap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t)
		ctx := context.Background()
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		r.setSecret(h.Secret)
		rot, err := w.svc.RotateSecret(ctx, w.a, h.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if rot.Secret == h.Secret || rot.PreviousSecretUntil.IsZero() {
			t.Fatalf("rotation: %+v", rot.Webhook)
		}
		if _, err := w.svc.Test(ctx, w.a.Principal.AccountID, h.ID); err != nil {
			t.Fatal(err)
		}
		g := r.requests()[0]
		if strings.Count(g.header, "v1=") != 2 || webhook.Verify(g.body, g.header, h.Secret, 0) != nil ||
			webhook.Verify(g.body, g.header, rot.Secret, 0) != nil {
			t.Fatalf("during the overlap: %s", g.header)
		}
		// A leaked secret is retired at once.
		rot2, err := w.svc.RotateSecret(ctx, w.a, h.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Test(ctx, w.a.Principal.AccountID, h.ID); err != nil {
			t.Fatal(err)
		}
		g = r.requests()[1]
		if strings.Count(g.header, "v1=") != 1 || webhook.Verify(g.body, g.header, rot2.Secret, 0) != nil ||
			webhook.Verify(g.body, g.header, rot.Secret, 0) == nil {
			t.Fatalf("after retiring: %s", g.header)
		}
		page, err := w.log.List(ctx, w.a.Principal.AccountID, auditQuery("webhook.secret_rotated"))
		if err != nil || len(page.Events) != 2 {
			t.Fatalf("audit: %d events, %v", len(page.Events), err)
		}
		for _, e := range page.Events {
			for _, v := range e.Details {
				if strings.Contains(v, "whsec_") {
					t.Error("a secret reached the audit log")
				}
			}
		}
	})
}

func TestTimeoutsAndRefusedConnectionsAreRetried(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, func(o *webhooks.Options) { o.Timeout = 200 * time.Millisecond })
		slow := newReceiver(t)
		slow.Config.Handler = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leave
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		dead := newReceiver(t)
		deadURL := dead.URL
		dead.Close()
		h1 := w.create(w.a, slow.URL, webhooks.EventDelivered)
		h2 := w.create(w.a, deadURL, webhooks.EventDelivered)
		w.event(w.a, w.message(w.a, "pat@patient.example"), webhooks.EventDelivered)
		w.dispatch()
		for h, want := range map[string]string{h1.ID: "timed out", h2.ID: "connection refused"} {
			d := w.deliveries(w.a, h)[0]
			if d.Status != webhooks.StatusRetrying || d.LastError != want || d.LastStatus != 0 {
				t.Errorf("%s: %+v", want, d)
			}
			if strings.Contains(d.LastError, "127.0.0.1") {
				t.Errorf("the error quotes the URL: %q", d.LastError)
			}
		}
	})
}

func TestTwoNodesDispatchingSendEachEventOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, func(o *webhooks.Options) { o.BatchSize = 3 })
		other := w.service(func(o *webhooks.Options) { o.BatchSize = 3 })
		r := newReceiver(t)
		w.create(w.a, r.URL, webhooks.EventDelivered)
		msg := w.message(w.a, "pat@patient.example")
		for range 20 {
			w.event(w.a, msg, webhooks.EventDelivered)
		}
		errs := make(chan error, 2)
		for _, svc := range []*webhooks.Service{w.svc, other} {
			go func() {
				_, err := svc.Dispatch(context.Background(), 10*time.Second)
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		ids := map[string]bool{}
		for _, g := range r.requests() {
			ids[g.eventID] = true
		}
		if got := len(r.requests()); got != 20 || len(ids) != 20 {
			t.Fatalf("receiver got %d requests, %d distinct; want 20 each", got, len(ids))
		}
	})
}

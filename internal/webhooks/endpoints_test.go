package webhooks_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/webhooks"
)

func auditQuery(action string) audit.Query { return audit.Query{Action: action} }

func TestBadInputIsRefusedNamingTheField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		strict := newWorld(t, s, func(o *webhooks.Options) { o.AllowHTTP, o.AllowPrivateNetworks = false, false })
		cases := []struct {
			name, url string
			events    []string
			field     string
		}{
			{"a URL is required", "", []string{"delivered"}, "url"},
			{"a relative URL is refused", "/hooks", []string{"delivered"}, "url"},
			{"plain http is refused", "http://hooks.example.org/x", []string{"delivered"}, "url"},
			{"another scheme is refused", "ftp://hooks.example.org/x", []string{"delivered"}, "url"},
			{"credentials in the URL are refused", "https://user:pw@hooks.example.org/x", []string{"delivered"}, "url"},
			{"a fragment is refused", "https://hooks.example.org/x#frag", []string{"delivered"}, "url"},
			{"loopback is refused", "https://127.0.0.1/x", []string{"delivered"}, "url"},
			{"localhost is refused", "https://localhost:8443/x", []string{"delivered"}, "url"},
			{"cloud metadata is refused", "https://169.254.169.254/latest", []string{"delivered"}, "url"},
			{"a private address is refused", "https://10.1.2.3/x", []string{"delivered"}, "url"},
			{"an IPv6 loopback is refused", "https://[::1]/x", []string{"delivered"}, "url"},
			{"a mapped private address is refused", "https://[::ffff:192.168.1.1]/x", []string{"delivered"}, "url"},
			{"no events are refused", "https://hooks.example.org/x", nil, "events"},
			{"an unknown event type is refused", "https://hooks.example.org/x", []string{"delivered", "exploded"}, "events[1]"},
			{"ping cannot be subscribed", "https://hooks.example.org/x", []string{"ping"}, "events[0]"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := strict.svc.Create(context.Background(), strict.a, webhooks.Spec{URL: tc.url, Events: tc.events})
				var fe *webhooks.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("got %v, want a field error on %s", err, tc.field)
				}
			})
		}
		h, err := strict.svc.Create(context.Background(), strict.a, webhooks.Spec{URL: "https://hooks.example.org/x?token=1",
			Events: []string{"delivered", "bounced", "delivered"}})
		if err != nil || len(h.Events) != 2 || h.Events[0] != "bounced" || !h.Enabled {
			t.Fatalf("a good webhook: %+v %v", h.Webhook, err)
		}
		if _, err := strict.svc.RotateSecret(context.Background(), strict.a, h.ID, 8*24*time.Hour); err == nil {
			t.Error("a previous secret kept for 8 days was accepted")
		}
	})
}

func TestAnotherAccountsWebhookIsInvisible(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		r := newReceiver(t)
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		other := w.b.Principal.AccountID
		url, on := "https://evil.example/x", true
		checks := map[string]error{}
		_, checks["get"] = w.svc.Get(ctx, other, h.ID)
		_, checks["update"] = w.svc.Update(ctx, w.b, h.ID, webhooks.Change{URL: &url, Enabled: &on})
		_, checks["rotate"] = w.svc.RotateSecret(ctx, w.b, h.ID, 0)
		_, checks["deliveries"] = w.svc.Deliveries(ctx, other, h.ID, webhooks.DeliveryFilter{})
		_, checks["test"] = w.svc.Test(ctx, other, h.ID)
		checks["delete"] = w.svc.Delete(ctx, w.b, h.ID)
		for name, err := range checks {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s by another account: %v, want not found", name, err)
			}
		}
		if list, err := w.svc.List(ctx, other); err != nil || len(list) != 0 {
			t.Errorf("another account lists %d webhooks (%v)", len(list), err)
		}
		// The other account's events never reach this account's webhook.
		w.event(w.b, w.message(w.b, "x@patient.example"), webhooks.EventDelivered)
		w.dispatch()
		if n := len(r.requests()); n != 0 {
			t.Fatalf("another account's event was delivered: %d", n)
		}
		if got, err := w.svc.Get(ctx, w.a.Principal.AccountID, h.ID); err != nil || got.URL != h.URL {
			t.Errorf("the webhook changed: %+v %v", got, err)
		}
	})
}

func TestPrivateDestinationsAreRefusedAtConnectTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		r := newReceiver(t)
		h := w.create(w.a, r.URL, webhooks.EventDelivered) // created where loopback is allowed
		w.svc = w.service(func(o *webhooks.Options) { o.AllowPrivateNetworks = false })
		// The dialer checks the address it connects to, whatever the
		// URL says.
		w.event(w.a, w.message(w.a, "pat@patient.example"), webhooks.EventDelivered)
		w.dispatch()
		d := w.deliveries(w.a, h.ID)[0]
		if len(r.requests()) != 0 || d.Status != webhooks.StatusRetrying || d.LastError != "destination address not allowed (private, loopback or link-local)" {
			t.Fatalf("%+v, %d requests", d, len(r.requests()))
		}
	})
}

func TestDeletingAWebhookRemovesItsLog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		r := newReceiver(t)
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		w.event(w.a, w.message(w.a, "pat@patient.example"), webhooks.EventDelivered)
		w.dispatch()
		if err := w.svc.Delete(ctx, w.a, h.ID); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.Reader().QueryRow(ctx, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1", h.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d deliveries left (%v)", n, err)
		}
		if _, err := w.svc.Get(ctx, w.a.Principal.AccountID, h.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		for _, action := range []string{"webhook.created", "webhook.deleted"} {
			page, err := w.log.List(ctx, w.a.Principal.AccountID, auditQuery(action))
			if err != nil || len(page.Events) != 1 || page.Events[0].Target != "webhook/"+h.ID || page.Events[0].Details["url_host"] != "http://"+r.Listener.Addr().String() {
				t.Errorf("%s audit: %+v %v", action, page.Events, err)
			}
		}
	})
}

func TestDeliveryLogPagesAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		r := newReceiver(t, 500)
		h := w.create(w.a, r.URL, webhooks.EventDelivered)
		msg := w.message(w.a, "pat@patient.example")
		for range 5 {
			w.event(w.a, msg, webhooks.EventDelivered)
		}
		w.dispatch()
		acct := w.a.Principal.AccountID
		var all []webhooks.Delivery
		cursor := ""
		for {
			p, err := w.svc.Deliveries(ctx, acct, h.ID, webhooks.DeliveryFilter{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Deliveries...)
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if len(all) != 5 || all[0].ID < all[4].ID {
			t.Fatalf("paged %d deliveries, newest first %v", len(all), all[0].ID < all[4].ID)
		}
		p, err := w.svc.Deliveries(ctx, acct, h.ID, webhooks.DeliveryFilter{Status: webhooks.StatusRetrying})
		if err != nil || len(p.Deliveries) != 1 {
			t.Fatalf("retrying: %d %v", len(p.Deliveries), err)
		}
		if _, err := w.svc.Deliveries(ctx, acct, h.ID, webhooks.DeliveryFilter{Cursor: "nope"}); !errors.Is(err, webhooks.ErrBadCursor) {
			t.Errorf("bad cursor: %v", err)
		}
	})
}

func TestOnlyPublicAddressesAreDestinations(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"8.8.8.8": true, "2606:4700:4700::1111": true, "93.184.216.34": true,
		"127.0.0.1": false, "10.0.0.1": false, "172.16.5.4": false, "192.168.0.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "255.255.255.255": false, "224.0.0.1": false, "::1": false, "::": false,
		"fc00::1": false, "fe80::1": false, "::ffff:10.0.0.1": false, "::ffff:127.0.0.1": false, "64:ff9b::a00:1": false,
		"198.18.0.1": false, "240.0.0.1": false, "2002:a00:1::": false,
	}
	for addr, want := range cases {
		if got := webhooks.PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: public %v, want %v", addr, got, want)
		}
	}
}

func FuzzValidateURL(f *testing.F) {
	for _, u := range []string{"https://hooks.example.org/x?t=1", "http://[::1]:80/", "https://u:p@h/", "https://h#f", "//h", "https://%zz"} {
		f.Add(u)
	}
	svc := &webhooks.Service{}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := webhooks.ValidateURL(svc, raw)
		if err != nil {
			return
		}
		u, perr := url.Parse(out)
		if perr != nil || u.Scheme != "https" || u.User != nil || u.Hostname() == "" || u.Fragment != "" {
			t.Fatalf("accepted %q as %q", raw, out)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && !webhooks.PublicAddr(a) {
			t.Fatalf("accepted a private address: %q", raw)
		}
	})
}

package delivery_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/mtasts"
	"github.com/sealpost/sealpost/internal/mtasts/mtaststest"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// stsWorld is a world whose destinations publish MTA-STS policies from a
// loopback HTTPS server trusted through the engine's roots.
type stsWorld struct {
	*world
	https *mtaststest.Server
	reg   *prometheus.Registry
	sts   *mtasts.Client
}

func newSTSWorld(t *testing.T, s *store.Store, tlsPolicy string) *stsWorld {
	t.Helper()
	cert, certPEM, err := smtptest.Certificate("mta-sts.patient.example", "mta-sts.wrongname.example")
	if err != nil {
		t.Fatal(err)
	}
	x := &stsWorld{https: mtaststest.Start(cert), reg: prometheus.NewRegistry()}
	t.Cleanup(x.https.Close)
	x.world = newWorld(t, s, tlsPolicy, func(o *delivery.Options) {
		o.RootCAs.AppendCertsFromPEM(certPEM)
		x.sts = mtasts.New(s, lazyResolver{x}, mtasts.Options{RootCAs: o.RootCAs, Port: x.https.Port, Timeout: 5 * time.Second, Now: o.Now})
		o.MTASTS = x.sts
		o.Registerer = x.reg
	})
	x.must(x.dns.Add("mta-sts.patient.example. 60 IN A 127.0.0.1", "mta-sts.wrongname.example. 60 IN A 127.0.0.1",
		"wrongname.example. 60 IN MX 10 mx.wrongname.example.", "mx.wrongname.example. 60 IN A 127.0.0.1"))
	return x
}

// lazyResolver is the world's resolver, looked up when used (the world
// is still being built when the options are).
type lazyResolver struct{ x *stsWorld }

func (l lazyResolver) TXT(ctx context.Context, name string) ([]string, error) {
	return l.x.world.resolver.TXT(ctx, name)
}

func (l lazyResolver) Addrs(ctx context.Context, host string) ([]string, error) {
	return l.x.world.resolver.Addrs(ctx, host)
}

// publish publishes domain's policy with the TXT id.
func (x *stsWorld) publish(domain, id, policy string) {
	x.t.Helper()
	x.dns.Remove("_mta-sts." + domain)
	x.must(x.dns.Add(`_mta-sts.` + domain + `. 60 IN TXT "v=STSv1; id=` + id + `"`))
	x.https.SetPolicy(domain, policy)
}

func (x *stsWorld) counter(name string, labels map[string]string) float64 {
	x.t.Helper()
	families, err := x.reg.Gather()
	if err != nil {
		x.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func policy(mode string, mx ...string) string {
	s := "version: STSv1\r\nmode: " + mode + "\r\n"
	for _, m := range mx {
		s += "mx: " + m + "\r\n"
	}
	return s + "max_age: 86400\r\n"
}

func TestMTASTSEnforceWithMatchingMXDelivers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSTSWorld(t, s, delivery.TLSOpportunistic)
		x.publish("patient.example", "one", policy(mtasts.ModeEnforce, "*.patient.example"))
		acc := x.send("pat@patient.example")
		x.deliver("patient.example")
		got := x.sink.Messages()
		if len(got) != 1 || !got[0].TLS {
			t.Fatalf("sink received %+v: want one message over TLS", got)
		}
		if r := x.status(acc.ID).Recipients[0]; r.State != messages.StateDelivered || r.RemoteHost != "mx.patient.example" {
			t.Fatalf("recipient %+v", r)
		}
	})
}

func TestMTASTSPolicyMismatchDefersNeverClearText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		domain string
		policy string
		reason string
	}{
		{name: "MTA-STS policy mismatch defers, never clear text: no MX matches", domain: "patient.example",
			policy: policy(mtasts.ModeEnforce, "mx.elsewhere.example"), reason: "mx_mismatch"},
		{name: "MTA-STS policy mismatch defers, never clear text: certificate not valid for the MX", domain: "wrongname.example",
			policy: policy(mtasts.ModeEnforce, "mx.wrongname.example"), reason: "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				// Opportunistic TLS would deliver: the policy is what refuses.
				x := newSTSWorld(t, s, delivery.TLSOpportunistic)
				x.publish(tt.domain, "one", tt.policy)
				acc := x.send("pat@" + tt.domain)
				x.deliver(tt.domain)
				r := x.status(acc.ID).Recipients[0]
				if r.State != messages.StateDeferred || x.sink.Count() != 0 || !strings.Contains(r.SMTPReply, "MTA-STS") {
					t.Fatalf("recipient %+v, %d messages at the sink; want deferred, none sent", r, x.sink.Count())
				}
				if n := x.counter("sealpost_delivery_mta_sts_failures_total", map[string]string{"mode": "enforce", "reason": tt.reason}); n < 1 {
					t.Errorf("failure not counted (%v)", n)
				}
			})
		})
	}
}

func TestMTASTSPolicyMismatchDefersNeverClearTextWithoutSTARTTLS(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSTSWorld(t, s, delivery.TLSOpportunistic)
		plain, err := smtptest.Start(nil) // offers no STARTTLS
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(plain.Close)
		_, port, _ := net.SplitHostPort(plain.Addr)
		p, _ := strconv.Atoi(port)
		e, err := delivery.New(s, x.vault, x.domains, x.resolver, delivery.Options{TLSPolicy: delivery.TLSOpportunistic, RootCAs: x.roots,
			Port: p, MTASTS: x.sts, Timeout: 5 * time.Second, Now: x.now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		x.publish("patient.example", "one", policy(mtasts.ModeEnforce, "*.patient.example"))
		acc := x.send("pat@patient.example")
		if _, err := e.DeliverDomain(context.Background(), "patient.example", time.Minute); err != nil {
			t.Fatal(err)
		}
		if r := x.status(acc.ID).Recipients[0]; r.State != messages.StateDeferred || plain.Count() != 0 || !strings.Contains(r.SMTPReply, "MTA-STS") {
			t.Fatalf("recipient %+v, %d messages in clear text", r, plain.Count())
		}
	})
}

func TestMTASTSTestingModeDelivers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSTSWorld(t, s, delivery.TLSOpportunistic)
		// Neither the MX name nor the certificate would pass under enforce.
		x.publish("wrongname.example", "one", policy(mtasts.ModeTesting, "mx.elsewhere.example"))
		acc := x.send("pat@wrongname.example")
		x.deliver("wrongname.example")
		if r := x.status(acc.ID).Recipients[0]; r.State != messages.StateDelivered || x.sink.Count() != 1 {
			t.Fatalf("recipient %+v, %d messages", r, x.sink.Count())
		}
		for _, reason := range []string{"mx_mismatch", "tls"} {
			if n := x.counter("sealpost_delivery_mta_sts_failures_total", map[string]string{"mode": "testing", "reason": reason}); n < 1 {
				t.Errorf("testing-mode %s failure not counted", reason)
			}
		}
	})
}

func TestMTASTSCachedPolicySurvivesFetchFailureAndRestart(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSTSWorld(t, s, delivery.TLSOpportunistic)
		x.publish("patient.example", "one", policy(mtasts.ModeEnforce, "mx.patient.example"))
		first := x.send("pat@patient.example")
		x.deliver("patient.example")
		if r := x.status(first.ID).Recipients[0]; r.State != messages.StateDelivered {
			t.Fatalf("first message %+v", r)
		}
		// An attacker swaps the MX and breaks the policy host (new id,
		// fetch fails): the cached policy still holds.
		x.dns.Remove("patient.example")
		x.must(x.dns.Add("patient.example. 60 IN MX 10 mx2.patient.example.", "mx2.patient.example. 60 IN A 127.0.0.1"))
		x.https.SetStatus(http.StatusServiceUnavailable)
		x.publish("patient.example", "two", policy(mtasts.ModeTesting, "*.patient.example"))
		x.advance(10 * time.Minute)
		second := x.send("pat@patient.example")
		x.deliver("patient.example")
		if r := x.status(second.ID).Recipients[0]; r.State != messages.StateDeferred || x.sink.Count() != 1 {
			t.Fatalf("with the cached policy: %+v, %d messages", r, x.sink.Count())
		}
		// A restarted node reads the policy from the database.
		restarted, err := delivery.New(s, x.vault, x.domains, x.resolver, delivery.Options{RootCAs: x.roots, Port: x.port,
			MTASTS: mtasts.New(s, x.resolver, mtasts.Options{RootCAs: x.roots, Port: x.https.Port, Now: x.now}), Now: x.now})
		if err != nil {
			t.Fatal(err)
		}
		defer restarted.Close()
		x.advance(2 * time.Hour) // the retry is due
		if _, err := restarted.DeliverDomain(context.Background(), "patient.example", time.Minute); err != nil {
			t.Fatal(err)
		}
		if r := x.status(second.ID).Recipients[0]; r.State != messages.StateDeferred || r.Attempts != 2 || x.sink.Count() != 1 {
			t.Fatalf("after a restart: %+v, %d messages", r, x.sink.Count())
		}
	})
}

func TestDomainRateLimitHoldsBackWithoutAnAttempt(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, delivery.TLSRequired, func(o *delivery.Options) {
			o.DomainRates = map[string]delivery.Rate{"patient.example": {N: 2, Per: time.Minute}, "*": {N: 1000, Per: time.Second}}
		})
		var ids []string
		for range 3 {
			ids = append(ids, w.send("pat@patient.example").ID)
		}
		w.deliver("patient.example")
		if n := w.sink.Count(); n != 1 {
			t.Fatalf("%d messages sent at once; want 1 (2/min, a bucket of 1)", n)
		}
		waiting := 0
		for _, id := range ids {
			r := w.status(id).Recipients[0]
			if r.State == messages.StateDeferred || r.State != messages.StateDelivered && r.Attempts != 0 {
				t.Fatalf("held-back recipient %+v: want waiting, no attempt", r)
			}
			if r.State != messages.StateDelivered {
				waiting++
			}
		}
		if waiting != 2 {
			t.Fatalf("%d recipients waiting, want 2", waiting)
		}
		// Nothing more goes before the bucket refills; then one more.
		w.deliver("patient.example")
		if n := w.sink.Count(); n != 1 {
			t.Fatalf("sent before the refill: %d", n)
		}
		w.advance(30 * time.Second)
		w.deliver("patient.example")
		if n := w.sink.Count(); n != 2 {
			t.Fatalf("after 30s: %d messages, want 2", n)
		}
	})
}

// relay is a smarthost sink with AUTH, trusted by the world's roots.
func relay(t *testing.T, w *world, implicit bool) *smtptest.Sink {
	t.Helper()
	cert, certPEM, err := smtptest.Certificate("relay.provider.example")
	if err != nil {
		t.Fatal(err)
	}
	w.roots.AppendCertsFromPEM(certPEM)
	var sink *smtptest.Sink
	if implicit {
		sink, err = smtptest.StartTLS(cert)
	} else {
		sink, err = smtptest.Start(&cert)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	sink.Set(func(k *smtptest.Sink) { k.Username, k.Password = "clinic", "correct horse" })
	w.must(w.dns.Add("relay.provider.example. 60 IN A 127.0.0.1"))
	return sink
}

func smarthostEngine(t *testing.T, w *world, sink *smtptest.Sink, mode, password string) *delivery.Engine {
	t.Helper()
	_, port, _ := net.SplitHostPort(sink.Addr)
	e, err := delivery.New(w.db, w.vault, w.domains, w.resolver, delivery.Options{HeloName: "mta.clinic.example", RootCAs: w.roots,
		Smarthost: "relay.provider.example:" + port, SmarthostTLS: mode, SmarthostUsername: "clinic", SmarthostPassword: password,
		Timeout: 5 * time.Second, Now: w.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestSmarthostWithAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		implicit bool
		mechs    []string
		password string
		want     string
	}{
		{name: "STARTTLS and AUTH PLAIN deliver", password: "correct horse", want: messages.StateDelivered},
		{name: "implicit TLS and AUTH PLAIN deliver", implicit: true, password: "correct horse", want: messages.StateDelivered},
		{name: "AUTH LOGIN delivers when PLAIN is not offered", mechs: []string{sasl.Login}, password: "correct horse", want: messages.StateDelivered},
		{name: "a wrong password defers", password: "wrong", want: messages.StateDeferred},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				w := newWorld(t, s, delivery.TLSOpportunistic)
				sink := relay(t, w, tt.implicit)
				if tt.mechs != nil {
					sink.Set(func(k *smtptest.Sink) { k.AuthMechs = tt.mechs })
				}
				mode := delivery.SmarthostSTARTTLS
				if tt.implicit {
					mode = delivery.SmarthostImplicit
				}
				e := smarthostEngine(t, w, sink, mode, tt.password)
				// nowhere.example has no DNS at all: only the relay can take it.
				acc := w.send("pat@nowhere.example")
				if _, err := e.DeliverDomain(context.Background(), "nowhere.example", time.Minute); err != nil {
					t.Fatal(err)
				}
				r := w.status(acc.ID).Recipients[0]
				if r.State != tt.want {
					t.Fatalf("recipient %+v; want %s", r, tt.want)
				}
				if strings.Contains(r.SMTPReply, tt.password) {
					t.Fatal("the password appears in the recorded reply")
				}
				got := sink.Messages()
				if tt.want == messages.StateDelivered && (len(got) != 1 || got[0].AuthUser != "clinic" || !got[0].TLS || r.TLSVersion == "") {
					t.Fatalf("relay received %+v", got)
				}
				if tt.want == messages.StateDeferred && (len(got) != 0 || !strings.Contains(r.SMTPReply, "535")) {
					t.Fatalf("relay received %+v, reply %q", got, r.SMTPReply)
				}
			})
		})
	}
}

func TestSmarthostRefusesClearText(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, delivery.TLSOpportunistic)
		plain, err := smtptest.Start(nil) // no STARTTLS
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(plain.Close)
		plain.Set(func(k *smtptest.Sink) { k.Username, k.Password = "clinic", "correct horse" })
		w.must(w.dns.Add("relay.provider.example. 60 IN A 127.0.0.1"))
		e := smarthostEngine(t, w, plain, delivery.SmarthostSTARTTLS, "correct horse")
		acc := w.send("pat@nowhere.example")
		if _, err := e.DeliverDomain(context.Background(), "nowhere.example", time.Minute); err != nil {
			t.Fatal(err)
		}
		if r := w.status(acc.ID).Recipients[0]; r.State != messages.StateDeferred || plain.Count() != 0 || !strings.Contains(r.SMTPReply, "TLS") {
			t.Fatalf("recipient %+v, %d messages", r, plain.Count())
		}
	})
}

func TestTransactionalGoesBeforeMarketingBacklog(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, delivery.TLSRequired, func(o *delivery.Options) { o.BatchSize = 2; o.MaxConnsPerDomain = 1 })
		ctx := context.Background()
		send := func(kind, subject string) {
			if _, err := w.msgs.Send(ctx, w.actor, messages.Request{From: "reminders@clinic.example", To: []string{"pat@patient.example"},
				Subject: subject, Text: "x", Kind: kind}, ""); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			send(messages.KindMarketing, "newsletter "+strconv.Itoa(i))
		}
		send(messages.KindTransactional, "result 0")
		send(messages.KindTransactional, "result 1")

		// Each domain job carries its priority, and a waiting marketing
		// job does not absorb the transactional one.
		jobs := jobPriorities(t, s)
		if jobs[`patient.example/1`] != 1 || jobs[`patient.example/2`] != 2 || len(jobs) != 2 {
			t.Fatalf("delivery jobs %v: want one per priority", jobs)
		}
		w.deliver("patient.example")
		got := w.sink.Messages()
		if len(got) != 5 {
			t.Fatalf("%d messages delivered", len(got))
		}
		for i, m := range got {
			transactional := strings.Contains(string(m.Data), "Subject: result")
			if transactional != (i < 2) {
				t.Fatalf("message %d (transactional %v) out of order", i, transactional)
			}
		}
	})
}

func TestScanStartsDomainJobsAtTheirMostUrgentPriority(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, delivery.TLSRequired)
		ctx := context.Background()
		for _, m := range []struct{ to, kind string }{
			{"a@marketing-only.example", messages.KindMarketing},
			{"b@mixed.example", messages.KindMarketing}, {"c@mixed.example", messages.KindTransactional},
		} {
			if _, err := w.msgs.Send(ctx, w.actor, messages.Request{From: "reminders@clinic.example", To: []string{m.to},
				Subject: "s", Text: "x", Kind: m.kind}, ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Writer().Exec(ctx, "DELETE FROM river_job"); err != nil {
			t.Fatal(err)
		}
		q, err := queue.New(s, queue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w.must(queue.AddWorker(q, &delivery.DomainWorker{Engine: w.engine}))
		if err := (&delivery.ScanWorker{Engine: w.engine, Queue: q}).Work(ctx, nil); err != nil {
			t.Fatal(err)
		}
		jobs := jobPriorities(t, s)
		if len(jobs) != 2 || jobs["marketing-only.example/2"] != 2 || jobs["mixed.example/1"] != 1 {
			t.Fatalf("scan jobs %v", jobs)
		}
	})
}

// jobPriorities maps "domain/args priority" of delivery jobs to their
// River priority.
func jobPriorities(t *testing.T, s *store.Store) map[string]int {
	t.Helper()
	args := "args::text"
	if s.Dialect() == store.SQLite {
		args = "json(args)" // River's SQLite driver stores JSONB
	}
	rows, err := s.Reader().Query(context.Background(), "SELECT "+args+", priority FROM river_job WHERE kind = 'delivery.domain'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var args []byte
		var prio int
		if err := rows.Scan(&args, &prio); err != nil {
			t.Fatal(err)
		}
		var a messages.DeliverArgs
		if err := json.Unmarshal(args, &a); err != nil {
			t.Fatal(err)
		}
		out[a.Domain+"/"+strconv.Itoa(a.Priority)] = prio
	}
	return out
}

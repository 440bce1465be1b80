package delivery_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

// world is one account with a verified sending domain, a DNS server
// publishing its DKIM keys and the destinations' MX records, and sinks.
type world struct {
	t        *testing.T
	db       *store.Store
	msgs     *messages.Service
	engine   *delivery.Engine
	domains  *domains.Service
	dns      *dnstest.Server
	sink     *smtptest.Sink // mx.patient.example, trusted certificate
	actor    account.Actor
	mu       sync.Mutex
	clock    time.Time
	resolver *resolve.Resolver
	roots    *x509.CertPool
	port     int
	vault    *vault.Vault
}

func newWorld(t *testing.T, s *store.Store, policy string, mods ...func(*delivery.Options)) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, db: s, clock: time.Now()}
	var err error
	if w.dns, err = dnstest.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.dns.Close)
	cert, certPEM, err := smtptest.Certificate("mx.patient.example", "mx2.patient.example")
	if err != nil {
		t.Fatal(err)
	}
	w.roots = x509.NewCertPool()
	w.roots.AppendCertsFromPEM(certPEM)
	if w.sink, err = smtptest.Start(&cert); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.sink.Close)
	_, portStr, _ := net.SplitHostPort(w.sink.Addr)
	w.port, _ = strconv.Atoi(portStr)

	log := audit.New(s, audit.Options{})
	accts := account.NewStore(s)
	creds, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: "Clinic", OwnerEmail: "owner@clinic.example"})
	if err != nil {
		t.Fatal(err)
	}
	w.actor = account.Actor{Principal: auth.Principal{AccountID: creds.AccountID, ActorKind: auth.ActorClient, ActorID: creds.ClientID,
		Scopes: auth.AllScopes()}}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(s, mk, vault.Options{})
	w.vault = v
	w.resolver = resolve.New([]string{w.dns.Addr})
	w.domains = domains.New(s, v, w.resolver, log, "mta.clinic.example")
	d, err := w.domains.Register(ctx, w.actor, "clinic.example", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range w.domains.Records(d) {
		if r.Required {
			w.must(w.dns.Add(r.Name + ". 60 IN TXT " + txtStrings(r.Value)))
		}
	}
	// patient.example: a preferred MX that refuses connections, then the sink.
	w.must(w.dns.Add(
		"patient.example. 60 IN MX 5 dead.patient.example.",
		"patient.example. 60 IN MX 10 mx.patient.example.",
		"dead.patient.example. 60 IN A 127.0.0.2",
		"mx.patient.example. 60 IN A 127.0.0.1",
		"nomail.example. 60 IN MX 0 .",
	))
	w.must(queue.Migrate(ctx, s, nil))
	q, err := queue.New(s, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.msgs = messages.New(s, v, w.domains, q, messages.Options{Lifetime: 24 * time.Hour, Now: w.now})
	opts := delivery.Options{HeloName: "mta.clinic.example", TLSPolicy: policy,
		RootCAs: w.roots, Port: w.port, Timeout: 5 * time.Second, Registerer: prometheus.NewRegistry(), Now: w.now}
	for _, mod := range mods {
		mod(&opts) // options of the test (features_test.go)
	}
	w.engine, err = delivery.New(s, v, w.domains, w.resolver, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.engine.Close)
	// The queue is not started: tests call the engine themselves.
	w.must(queue.AddWorker(q, &delivery.DomainWorker{Engine: w.engine}))
	return w
}

func (w *world) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(d)
}

func (w *world) send(to ...string) messages.Accepted {
	w.t.Helper()
	acc, err := w.msgs.Send(context.Background(), w.actor, messages.Request{From: "Clinic <reminders@clinic.example>", To: to,
		Subject: "Your appointment", Text: "Tomorrow at 9:00.\n.\nA line starting with a dot, above.", HTML: "<p>Tomorrow at <b>9:00</b>.</p>"}, "")
	if err != nil {
		w.t.Fatalf("send: %v", err)
	}
	return acc
}

func (w *world) deliver(domain string) {
	w.t.Helper()
	if _, err := w.engine.DeliverDomain(context.Background(), domain, time.Minute); err != nil {
		w.t.Fatalf("deliver %s: %v", domain, err)
	}
}

func (w *world) status(id string) messages.Message {
	w.t.Helper()
	m, err := w.msgs.Get(context.Background(), w.actor.Principal.AccountID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

func txtStrings(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	return strings.Join(append(parts, `"`+v+`"`), " ")
}

func TestDeliversSignedOverVerifiedTLSWithMXFallback(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, delivery.TLSRequired)
		acc := w.send("pat@patient.example", "Sam <sam@patient.example>")
		w.deliver("patient.example")

		got := w.sink.Messages()
		if len(got) != 1 || len(got[0].Rcpts) != 2 || !got[0].TLS || got[0].From != "reminders@clinic.example" {
			t.Fatalf("sink received %+v: want one message for both recipients over TLS", got)
		}
		if !bytes.Contains(got[0].Data, []byte("\r\n.\r\nA line starting")) {
			t.Error("the lone dot line did not survive dot-stuffing")
		}
		// Both DKIM signatures verify against the published keys.
		verifs, err := dkim.VerifyWithOptions(bytes.NewReader(got[0].Data), &dkim.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) { return w.resolver.TXT(context.Background(), name) }})
		if err != nil || len(verifs) != 2 {
			t.Fatalf("DKIM: %v, %d signatures", err, len(verifs))
		}
		for _, v := range verifs {
			if v.Err != nil || v.Domain != "clinic.example" {
				t.Errorf("DKIM signature %+v: %v", v, v.Err)
			}
		}
		m := w.status(acc.ID)
		for _, r := range m.Recipients {
			if r.State != messages.StateDelivered || r.TLSVersion == "" || r.TLSCipher == "" || r.SMTPCode != 250 ||
				r.RemoteHost != "mx.patient.example" || r.DeliveredAt == nil {
				t.Errorf("recipient %+v", r)
			}
		}
		if m.Status != messages.StateDelivered {
			t.Errorf("message status %s", m.Status)
		}
	})
}

func TestRefusalsDeferralsAndBounces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, delivery.TLSRequired)
		ctx := context.Background()
		w.sink.Set(func(k *smtptest.Sink) {
			k.RcptReply = func(rcpt string) *smtp.SMTPError {
				switch rcpt {
				case "gone@patient.example":
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
				case "busy@patient.example":
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "try later"}
				}
				return nil
			}
		})
		acc := w.send("gone@patient.example", "busy@patient.example", "ok@patient.example")
		w.deliver("patient.example")
		states := map[string]messages.Recipient{}
		for _, r := range w.status(acc.ID).Recipients {
			states[r.Address] = r
		}
		if states["gone@patient.example"].State != messages.StateBounced || states["gone@patient.example"].SMTPCode != 550 ||
			states["busy@patient.example"].State != messages.StateDeferred || states["ok@patient.example"].State != messages.StateDelivered {
			t.Fatalf("states: %+v", states)
		}
		next := states["busy@patient.example"].NextAttempt
		if next == nil || !next.After(w.now().Add(30*time.Second)) {
			t.Fatalf("deferred without backoff: %v", next)
		}
		// The hard bounce suppresses the address: the next message to it
		// is not sent.
		again := w.send("gone@patient.example")
		if again.Recipients[0].State != messages.StateSuppressed {
			t.Errorf("send to a hard-bounced address: %s", again.Recipients[0].State)
		}

		// Nothing is retried before its time; then it is.
		w.sink.Set(func(k *smtptest.Sink) { k.RcptReply = nil })
		w.deliver("patient.example")
		if n := len(w.sink.Messages()); n != 1 {
			t.Fatalf("retried early: %d messages", n)
		}
		w.advance(time.Hour)
		due, err := w.engine.DueDomains(ctx, 10)
		if err != nil || len(due) != 1 || due[0] != "patient.example" {
			t.Fatalf("due domains: %v %v", due, err)
		}
		w.deliver("patient.example")
		for _, r := range w.status(acc.ID).Recipients {
			if r.Address == "busy@patient.example" && (r.State != messages.StateDelivered || r.Attempts != 2) {
				t.Errorf("retry: %+v", r)
			}
		}

		// A domain with a null MX bounces at once; a deferral past the
		// lifetime bounces.
		nomail := w.send("x@nomail.example")
		w.deliver("nomail.example")
		if r := w.status(nomail.ID).Recipients[0]; r.State != messages.StateBounced {
			t.Errorf("null MX: %+v", r)
		}
		w.sink.Set(func(k *smtptest.Sink) {
			k.DataReply = func() *smtp.SMTPError { return &smtp.SMTPError{Code: 421, Message: "closing"} }
		})
		late := w.send("late@patient.example")
		w.advance(24*time.Hour - 30*time.Second) // the next try (a minute away, ±20%) would fall after the lifetime
		w.deliver("patient.example")
		if r := w.status(late.ID).Recipients[0]; r.State != messages.StateBounced || !strings.Contains(r.SMTPReply, "421") {
			t.Errorf("past the lifetime: %+v", r)
		}
	})
}

func TestTLSPolicies(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{delivery.TLSRequired, delivery.TLSOpportunistic} {
		t.Run(policy, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				w := newWorld(t, s, policy)
				// wrongname.example's MX is the sink, whose certificate does not
				// name it.
				w.must(w.dns.Add("wrongname.example. 60 IN MX 10 mx.wrongname.example.", "mx.wrongname.example. 60 IN A 127.0.0.1"))
				acc := w.send("pat@wrongname.example")
				w.deliver("wrongname.example")
				r := w.status(acc.ID).Recipients[0]
				switch policy {
				case delivery.TLSRequired:
					if r.State != messages.StateDeferred || len(w.sink.Messages()) != 0 || !strings.Contains(r.SMTPReply, "TLS") {
						t.Errorf("required TLS, certificate for another name: %+v, %d messages", r, len(w.sink.Messages()))
					}
				case delivery.TLSOpportunistic:
					got := w.sink.Messages()
					if r.State != messages.StateDelivered || len(got) != 1 || !got[0].TLS {
						t.Errorf("opportunistic TLS: %+v, %+v", r, got)
					}
				}
			})
		})
	}
}

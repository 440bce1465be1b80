package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
	"github.com/sealpost/sealpost/internal/webhooks"
	"github.com/sealpost/sealpost/pkg/webhook"
)

// world is two accounts on one store with a webhooks service whose clock
// the test moves.
type world struct {
	t      *testing.T
	db     *store.Store
	vault  *vault.Vault
	master vault.MasterKey
	log    *audit.Log
	svc    *webhooks.Service
	reg    *prometheus.Registry
	a, b   account.Actor
	mu     sync.Mutex
	clock  time.Time
	events int
}

func newWorld(t *testing.T, s *store.Store, tune ...func(*webhooks.Options)) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, db: s, clock: time.Now().UTC().Truncate(time.Microsecond)}
	w.log = audit.New(s, audit.Options{})
	accts := account.NewStore(s)
	for i, who := range []*account.Actor{&w.a, &w.b} {
		creds, _, err := account.Bootstrap(ctx, s, accts, w.log, account.BootstrapOptions{AccountName: "Clinic", OwnerEmail: fmt.Sprintf("owner%d@clinic.example", i),
			Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		*who = account.Actor{Principal: auth.Principal{AccountID: creds.AccountID, ActorKind: auth.ActorClient, ActorID: creds.ClientID,
			Scopes: auth.AllScopes()}, RequestID: "req-1"}
	}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	w.vault, w.master = vault.New(s, mk, vault.Options{}), mk
	w.svc = w.service(tune...)
	return w
}

// service returns a webhooks service on the world's store and clock.
func (w *world) service(tune ...func(*webhooks.Options)) *webhooks.Service {
	w.t.Helper()
	w.reg = prometheus.NewRegistry()
	opts := webhooks.Options{AllowHTTP: true, AllowPrivateNetworks: true, Timeout: 5 * time.Second, Settle: -1,
		Registerer: w.reg, Now: w.now, Jitter: func() float64 { return 1 }}
	for _, f := range tune {
		f(&opts)
	}
	svc, err := webhooks.New(w.db, w.vault, w.log, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	return svc
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	w.clock = w.clock.Add(d)
	w.mu.Unlock()
}

// message stores a message with one recipient for actor's account and
// returns its id.
func (w *world) message(actor account.Actor, rcpt string) string {
	w.t.Helper()
	ctx := context.Background()
	id := store.NewID()
	now := store.Micros(w.now())
	if _, err := w.db.Writer().Exec(ctx, `INSERT INTO messages (id, account_id, actor_kind, actor_id, from_addr, from_domain, header_id, kind,
		tags, metadata, options, size, smtputf8, send_at, created_at) VALUES ($1, $2, 'client', 'c', 'r@clinic.example', 'clinic.example',
		$3, 'transactional', '["reminder"]', '{"appointment":"apt-42"}', '{}', 10, false, $4, $4)`,
		id, actor.Principal.AccountID, id+"@clinic.example", now); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.db.Writer().Exec(ctx, `INSERT INTO message_recipients (message_id, rcpt_index, account_id, address, domain, kind, state,
		priority, next_attempt_at, expires_at, updated_at) VALUES ($1, 0, $2, $3, 'patient.example', 'to', 'delivered', 1, $4, $4, $4)`,
		id, actor.Principal.AccountID, rcpt, now); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// event appends a message event as delivery would and returns its id.
func (w *world) event(actor account.Actor, messageID, typ string) string {
	w.t.Helper()
	id := store.NewID()
	details, _ := json.Marshal(map[string]string{"smtp_code": "250", "remote_host": "mx.patient.example", "tls_version": "TLS 1.3"})
	if _, err := w.db.Writer().Exec(context.Background(), `INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details)
		VALUES ($1, $2, $3, 0, $4, $5, $6)`, id, actor.Principal.AccountID, messageID, typ, store.Micros(w.now()), string(details)); err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *world) dispatch() int {
	w.t.Helper()
	n, err := w.svc.Dispatch(context.Background(), 10*time.Second)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) create(actor account.Actor, url string, events ...string) webhooks.WithSecret {
	w.t.Helper()
	h, err := w.svc.Create(context.Background(), actor, webhooks.Spec{URL: url, Events: events})
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

func (w *world) deliveries(actor account.Actor, id string) []webhooks.Delivery {
	w.t.Helper()
	p, err := w.svc.Deliveries(context.Background(), actor.Principal.AccountID, id, webhooks.DeliveryFilter{})
	if err != nil {
		w.t.Fatal(err)
	}
	return p.Deliveries
}

// received is one request the receiver got.
type received struct {
	eventID  string
	typ      string // the Sealpost-Event-Type header
	header   string
	body     []byte
	payload  webhooks.Payload
	verified error
}

// receiver is a real HTTP endpoint that verifies signatures with the
// secret it is given, records every request and answers with the next
// status of its script (then 200).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	script []int
	got    []received
	unique map[string]bool
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script, unique: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	got := received{eventID: req.Header.Get(webhook.EventIDHeader), typ: req.Header.Get(webhook.EventTypeHeader),
		header: req.Header.Get(webhook.SignatureHeader), body: body}
	got.verified = webhook.Verify(body, got.header, r.secret, webhook.DefaultTolerance)
	_ = json.Unmarshal(body, &got.payload)
	r.got = append(r.got, got)
	if got.verified == nil {
		r.unique[got.eventID] = true
	}
	status := http.StatusOK
	if len(r.script) > 0 {
		status, r.script = r.script[0], r.script[1:]
	}
	if status >= 300 && status < 400 {
		w.Header().Set("Location", "http://169.254.169.254/latest/meta-data/")
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte("thanks\x00\r\n  for the event"))
}

func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	r.secret = s
	r.mu.Unlock()
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// metric returns the value of a metric of the world's registry, the
// series with label=value (or the only one when label is empty); 0 when
// it has none.
func (w *world) metric(name, label, value string) float64 {
	w.t.Helper()
	families, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

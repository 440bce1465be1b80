package messages_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// world is two accounts, each with a verified sending domain
// (clinic.example and other.example), the messages service on an injected
// clock, and the queue (not started).
type world struct {
	t      *testing.T
	db     *store.Store
	vault  *vault.Vault
	msgs   *messages.Service
	engine *delivery.Engine
	a, b   account.Actor
	mu     sync.Mutex
	clock  time.Time

	master  vault.MasterKey
	domains *domains.Service
	queue   *queue.Queue
}

func newWorld(t *testing.T, s *store.Store, start time.Time) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, db: s, clock: start}
	log := audit.New(s, audit.Options{})
	accts := account.NewStore(s)
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	w.vault, w.master = vault.New(s, mk, vault.Options{}), mk
	d := domains.New(s, w.vault, resolve.New([]string{"127.0.0.1:1"}), log, "mta.clinic.example")
	for i, c := range []struct {
		actor  *account.Actor
		name   string
		domain string
	}{{&w.a, "Clinic", "clinic.example"}, {&w.b, "Other", "other.example"}} {
		creds, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: c.name,
			OwnerEmail: "owner@" + c.domain, Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		*c.actor = account.Actor{Principal: auth.Principal{AccountID: creds.AccountID, ActorKind: auth.ActorClient,
			ActorID: creds.ClientID, Scopes: auth.AllScopes()}}
		if _, err := d.Register(ctx, *c.actor, c.domain, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := queue.Migrate(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(s, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.domains, w.queue = d, q
	w.msgs = messages.New(s, w.vault, d, q, messages.Options{Lifetime: 24 * time.Hour, Now: w.now})
	// The engine on the same clock answers which domains are due.
	w.engine, err = delivery.New(s, w.vault, d, resolve.New([]string{"127.0.0.1:1"}), delivery.Options{Now: w.now,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.engine.Close)
	if err := queue.AddWorker(q, &delivery.DomainWorker{Engine: w.engine}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

func (w *world) set(t time.Time) {
	w.mu.Lock()
	w.clock = t
	w.mu.Unlock()
}

// send accepts a message from actor's domain to the given recipients.
func (w *world) send(actor account.Actor, from string, to []string, tags []string, sendAt time.Time) messages.Accepted {
	w.t.Helper()
	acc, err := w.msgs.Send(context.Background(), actor, messages.Request{From: from, To: to, Subject: "Reminder",
		Text: "See you tomorrow.", Tags: tags, SendAt: sendAt}, "")
	if err != nil {
		w.t.Fatalf("send: %v", err)
	}
	return acc
}

// exec runs SQL that crafts delivery outcomes.
func (w *world) exec(query string, args ...any) {
	w.t.Helper()
	if _, err := w.db.Writer().Exec(context.Background(), query, args...); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
}

// outcome sets a recipient's state as delivery would leave it.
func (w *world) outcome(messageID string, rcpt int, state string, attempts, code int) {
	w.t.Helper()
	var delivered any
	if state == messages.StateDelivered {
		delivered = store.Micros(w.now())
	}
	w.exec(`UPDATE message_recipients SET state = $1, attempts = $2, smtp_code = $3, delivered_at = $4, remote_host = 'mx.patient.example',
		tls_version = 'TLS 1.3' WHERE message_id = $5 AND rcpt_index = $6`, state, attempts, code, delivered, messageID, rcpt)
}

// event appends a message event (as tracking or delivery write them).
func (w *world) event(accountID, messageID string, rcpt int, typ string) {
	w.t.Helper()
	w.exec(`INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details) VALUES ($1, $2, $3, $4, $5, $6, '{}')`,
		store.NewID(), accountID, messageID, rcpt, typ, store.Micros(w.now()))
}

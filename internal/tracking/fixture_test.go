package tracking

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

const testBase = "https://sp.example"

// world is two accounts with verified sending domains, the real
// messages service (its queue not started) and the tracking service.
type world struct {
	t        *testing.T
	db       *store.Store
	msgs     *messages.Service
	tracking *Service
	actor    account.Actor // clinic.example
	other    account.Actor // other.example
	master   vault.MasterKey
}

func newWorld(t *testing.T, s *store.Store) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, db: s}
	log := audit.New(s, audit.Options{})
	accts := account.NewStore(s)
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	w.master = mk
	v := vault.New(s, mk, vault.Options{})
	doms := domains.New(s, v, resolve.New([]string{"127.0.0.1:1"}), log, "mta.clinic.example")
	for i, d := range []string{"clinic.example", "other.example"} {
		creds, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: d, OwnerEmail: "owner@" + d, Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		actor := account.Actor{Principal: auth.Principal{AccountID: creds.AccountID, ActorKind: auth.ActorClient, ActorID: creds.ClientID,
			Scopes: auth.AllScopes()}}
		if _, err := doms.Register(ctx, actor, d, true); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			w.actor = actor
		} else {
			w.other = actor
		}
	}
	if err := queue.Migrate(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(s, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The queue never starts: delivery jobs are only inserted.
	if err := queue.AddWorker(q, river.WorkFunc(func(context.Context, *river.Job[messages.DeliverArgs]) error { return nil })); err != nil {
		t.Fatal(err)
	}
	w.msgs = messages.New(s, v, doms, q, messages.Options{})
	if w.tracking, err = New(ctx, s, v, mk, Options{BaseURL: testBase}); err != nil {
		t.Fatal(err)
	}
	return w
}

// sent is a marketing message accepted by the messages service and
// instrumented per recipient as the send path does it.
type sent struct {
	id      string
	html    []string // per recipient
	headers [][]string
}

func (w *world) send(actor account.Actor, html string, to ...string) sent {
	w.t.Helper()
	ctx := context.Background()
	acc, err := w.msgs.Send(ctx, actor, messages.Request{From: "news@" + actorDomain(w, actor), To: to,
		Subject: "News", HTML: html, Kind: messages.KindMarketing}, "")
	if err != nil {
		w.t.Fatalf("send: %v", err)
	}
	plan, err := w.tracking.PlanFor(ctx, actor.Principal.AccountID, messages.KindMarketing, messages.Tracking{})
	if err != nil {
		w.t.Fatal(err)
	}
	m := w.tracking.ForMessage(actor.Principal.AccountID, acc.ID, plan)
	out := sent{id: acc.ID}
	for i := range to {
		body, hs, err := m.Recipient(i, html)
		if err != nil {
			w.t.Fatal(err)
		}
		out.html = append(out.html, body)
		var names []string
		for _, h := range hs {
			names = append(names, h.Name+": "+h.Value)
		}
		out.headers = append(out.headers, names)
	}
	if err := m.Seal(ctx); err != nil {
		w.t.Fatal(err)
	}
	if err := w.db.InTx(ctx, func(tx store.Tx) error { return m.Insert(ctx, tx) }); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func actorDomain(w *world, a account.Actor) string {
	if a.Principal.AccountID == w.actor.Principal.AccountID {
		return "clinic.example"
	}
	return "other.example"
}

var urlPattern = regexp.MustCompile(`https://sp\.example/(t/o|t/c|u)/([A-Za-z0-9_-]+)`)

// tokens returns the tokens of kind ("t/o", "t/c" or "u") in s, in order.
func tokens(s, kind string) []string {
	var out []string
	for _, m := range urlPattern.FindAllStringSubmatch(s, -1) {
		if m[1] == kind {
			out = append(out, m[2])
		}
	}
	return out
}

type event struct {
	rcpt    int
	typ     string
	details string
}

// events returns the message's events of typ.
func (w *world) events(accountID, messageID, typ string) []event {
	w.t.Helper()
	rows, err := w.db.Reader().Query(context.Background(), `SELECT rcpt_index, type, details FROM message_events
		WHERE account_id = $1 AND message_id = $2 AND type = $3 ORDER BY time, id`, accountID, messageID, typ)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.rcpt, &e.typ, &e.details); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func (w *world) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	w.t.Cleanup(cancel)
	return ctx
}

package tracking

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/emersion/go-message"
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
	vault    *vault.Vault
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
	if w.tracking, err = New(ctx, s, v, mk, Options{BaseURL: testBase}); err != nil {
		t.Fatal(err)
	}
	w.vault = v
	w.msgs = messages.New(s, v, doms, q, messages.Options{Tracker: w.tracking})
	return w
}

// sent is a marketing message accepted by the messages service, with
// each recipient's composed body as delivery will send it.
type sent struct {
	id      string
	html    []string   // per recipient, decoded
	headers [][]string // per recipient: its List-Unsubscribe* fields
}

func (w *world) send(actor account.Actor, html string, to ...string) sent {
	w.t.Helper()
	ctx := context.Background()
	acct := actor.Principal.AccountID
	acc, err := w.msgs.Send(ctx, actor, messages.Request{From: "news@" + actorDomain(w, actor), To: to,
		Subject: "News", HTML: html, Kind: messages.KindMarketing}, "")
	if err != nil {
		w.t.Fatalf("send: %v", err)
	}
	out := sent{id: acc.ID}
	for i := range to {
		var sealed []byte
		if err := w.db.Reader().QueryRow(ctx, "SELECT body_sealed FROM message_recipients WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3",
			acct, acc.ID, i).Scan(&sealed); err != nil || sealed == nil {
			w.t.Fatalf("recipient %d has no body of its own (%v)", i, err)
		}
		raw, err := w.vault.Open(ctx, acct, sealed, messages.RecipientBodyAD(acct, acc.ID, i))
		if err != nil {
			w.t.Fatal(err)
		}
		e, err := message.Read(bytes.NewReader(raw))
		if err != nil {
			w.t.Fatal(err)
		}
		var names []string
		for _, k := range []string{"List-Unsubscribe", "List-Unsubscribe-Post"} {
			if v := e.Header.Get(k); v != "" {
				names = append(names, k+": "+v)
			}
		}
		out.headers = append(out.headers, names)
		var body string
		_ = e.Walk(func(_ []int, p *message.Entity, err error) error {
			if mt, _, _ := p.Header.ContentType(); err == nil && mt == "text/html" {
				b, _ := io.ReadAll(p.Body)
				body = string(b)
			}
			return nil
		})
		out.html = append(out.html, body)
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

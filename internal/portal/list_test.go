package portal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// listWorld is a clinic's portal messages in every list state, and one of
// another account, as a month of use leaves them.
type listWorld struct {
	*world
	carrier string            // the message with two portal copies
	ids     map[string]string // name -> portal message id
	viewed  time.Time         // when "viewed" was first read
	theirs  string            // the other account's message
}

func newListWorld(t *testing.T, s *store.Store) *listWorld {
	t.Helper()
	ctx := context.Background()
	w := &listWorld{world: newWorld(t, s), carrier: store.NewID(), ids: map[string]string{}}
	start := w.clock.now()
	put := func(name string, d Deposit) string {
		id, _ := w.deposit(d)
		w.ids[name] = id
		return id
	}
	put("old", Deposit{})
	w.clock.advance(20 * 24 * time.Hour)
	put("shredded", Deposit{Recipient: "lee@patient.example"})
	// A shorter period the account had for a while shredded everything
	// stored until then (the sweeper's real path).
	if _, _, err := (&Expiry{DB: w.db, Audit: w.audit, Now: w.clock.now}).Shred(ctx, w.acct, w.clock.now().Add(time.Microsecond),
		time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	w.clock.advance(time.Minute)
	_, token := w.deposit(Deposit{MessageID: w.carrier, Content: Content{Subject: "Your lab results", Text: "HbA1c 6.1%",
		Attachments: []Attachment{{Filename: "results.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7")}}}})
	w.ids["viewed"] = w.lastDeposit(t)
	w.clock.advance(time.Minute)
	sess, err := w.svc.Verify(ctx, token, w.code(token), "", Client{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Read(ctx, sess, Client{}); err != nil {
		t.Fatal(err)
	}
	w.viewed = w.clock.now()
	w.clock.advance(time.Minute)
	recalled := put("recalled", Deposit{Recipient: "lee@patient.example"})
	if _, err := w.svc.Recall(ctx, w.acct, recalled, Actor{Kind: "client", ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	w.clock.advance(time.Minute)
	// Two deposits in the same microsecond: the id breaks the tie.
	put("active", Deposit{MessageID: w.carrier, RcptIndex: 1})
	put("twin", Deposit{})
	w.theirs, _ = w.deposit(Deposit{AccountID: w.other})
	// Exactly 30 days after the first deposit: it has just expired.
	w.clock.advance(start.Add(30 * 24 * time.Hour).Sub(w.clock.now()))
	return w
}

// lastDeposit is the id of the account's newest portal message.
func (w *listWorld) lastDeposit(t *testing.T) string {
	t.Helper()
	var id string
	if err := w.db.Reader().QueryRow(context.Background(), `SELECT id FROM portal_messages WHERE account_id = $1
		ORDER BY created_at DESC, id DESC LIMIT 1`, w.acct).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// names maps listed ids back to the world's names.
func (w *listWorld) names(list []Summary) []string {
	out := []string{}
	for _, m := range list {
		name := m.ID
		for n, id := range w.ids {
			if id == m.ID {
				name = n
			}
		}
		out = append(out, name)
	}
	return out
}

// newestFirst is the world's messages of the given names in list order.
func (w *listWorld) newestFirst(names ...string) []string {
	order := []string{"active", "twin"}
	if w.ids["active"] < w.ids["twin"] {
		order = []string{"twin", "active"}
	}
	order = append(order, "recalled", "viewed", "shredded", "old")
	return slices.DeleteFunc(order, func(n string) bool { return !slices.Contains(names, n) })
}

func TestListShowsEveryStateNewestFirstAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newListWorld(t, s)
		ctx := context.Background()
		cases := []struct {
			name string
			f    ListFilter
			want []string
		}{
			{"everything, newest first", ListFilter{}, w.newestFirst("active", "twin", "recalled", "viewed", "shredded", "old")},
			{"active is readable, read or not", ListFilter{State: ListActive}, w.newestFirst("active", "twin", "viewed")},
			{"expired at the end of the period", ListFilter{State: ListExpired}, []string{"old"}},
			{"recalled", ListFilter{State: ListRecalled}, []string{"recalled"}},
			{"shredded before the current period ended", ListFilter{State: ListShredded}, []string{"shredded"}},
			{"one recipient", ListFilter{Recipient: "lee@patient.example"}, []string{"recalled", "shredded"}},
			{"an address differing in case is another recipient", ListFilter{Recipient: "LEE@patient.example"}, []string{}},
			{"the copies of one message", ListFilter{MessageID: w.carrier}, w.newestFirst("active", "viewed")},
			{"filters combine", ListFilter{Recipient: "pat@patient.example", State: ListExpired}, []string{"old"}},
			{"no match", ListFilter{MessageID: "no-such-message"}, []string{}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				page, err := w.svc.List(ctx, w.acct, c.f)
				if err != nil {
					t.Fatal(err)
				}
				if got := w.names(page.Messages); !slices.Equal(got, c.want) {
					t.Errorf("listed %v, want %v", got, c.want)
				}
				if page.NextCursor != "" {
					t.Errorf("one page holds it all, yet next cursor %q", page.NextCursor)
				}
			})
		}
	})
}

func TestListItemsSayWhatHappenedButNeverTheContent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newListWorld(t, s)
		page, err := w.svc.List(context.Background(), w.acct, ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]Summary{}
		for i, n := range w.names(page.Messages) {
			byName[n] = page.Messages[i]
		}
		want := map[string]string{"active": ListActive, "twin": ListActive, "viewed": ListActive, "recalled": ListRecalled,
			"shredded": ListShredded, "old": ListExpired}
		for name, state := range want {
			m := byName[name]
			if m.State != state {
				t.Errorf("%s: state %q, want %q", name, m.State, state)
			}
			if !m.ExpiresAt.Equal(m.CreatedAt.Add(defaultLifetime)) {
				t.Errorf("%s: expires %s, created %s", name, m.ExpiresAt, m.CreatedAt)
			}
			if (m.FirstViewAt != nil) != (name == "viewed") {
				t.Errorf("%s: first viewed %v", name, m.FirstViewAt)
			}
		}
		v := byName["viewed"]
		if v.MessageID != w.carrier || v.Recipient != "pat@patient.example" || v.Attachments != 1 || !v.FirstViewAt.Equal(w.viewed) {
			t.Errorf("viewed: %+v", v)
		}
		if byName["active"].Attachments != 0 {
			t.Errorf("active: %+v", byName["active"])
		}
		b, _ := json.Marshal(page.Messages)
		for _, secret := range []string{"lab results", "HbA1c", "078-05-1120", "results.pdf", "PDF", "Dr Lee", "sender"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("the list carries %q: %s", secret, b)
			}
		}
	})
}

func TestListPagesThroughEverythingOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newListWorld(t, s)
		ctx := context.Background()
		for _, c := range []struct {
			name string
			f    ListFilter
			want []string
		}{
			{"all, two at a time (across the tie)", ListFilter{Limit: 2},
				w.newestFirst("active", "twin", "recalled", "viewed", "shredded", "old")},
			{"a filter holds on every page", ListFilter{Limit: 1, State: ListActive}, w.newestFirst("active", "twin", "viewed")},
		} {
			t.Run(c.name, func(t *testing.T) {
				var got []string
				pages := 0
				f := c.f
				for {
					page, err := w.svc.List(ctx, w.acct, f)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if len(page.Messages) > c.f.Limit {
						t.Fatalf("page of %d, limit %d", len(page.Messages), c.f.Limit)
					}
					got = append(got, w.names(page.Messages)...)
					if page.NextCursor == "" {
						break
					}
					if pages > 10 {
						t.Fatal("the cursor never ends")
					}
					f.Cursor = page.NextCursor
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("paged through %v, want %v", got, c.want)
				}
				if wantPages := (len(c.want) + c.f.Limit - 1) / c.f.Limit; pages != wantPages {
					t.Errorf("%d pages, want %d", pages, wantPages)
				}
			})
		}
	})
}

func TestListIsTheAccountsOwn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newListWorld(t, s)
		ctx := context.Background()
		mine, err := w.svc.List(ctx, w.acct, ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mine.Messages {
			if m.ID == w.theirs {
				t.Error("the other account's message is listed")
			}
		}
		theirs, err := w.svc.List(ctx, w.other, ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(theirs.Messages) != 1 || theirs.Messages[0].ID != w.theirs {
			t.Errorf("the other account lists %v", w.names(theirs.Messages))
		}
		// A cursor made in one account pages nothing of another's.
		page, err := w.svc.List(ctx, w.acct, ListFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		rest, err := w.svc.List(ctx, w.other, ListFilter{Cursor: page.NextCursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rest.Messages {
			if m.ID != w.theirs {
				t.Errorf("the other account pages into %s", m.ID)
			}
		}
	})
}

func TestListRefusesBadCursorsAndStates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		enc := base64.RawURLEncoding.EncodeToString
		for name, cursor := range map[string]string{
			"not base64":      "!!!",
			"no separator":    enc([]byte("1700000000000000")),
			"no id":           enc([]byte("1700000000000000/")),
			"not a timestamp": enc([]byte("yesterday/0190")),
		} {
			if _, err := w.svc.List(ctx, w.acct, ListFilter{Cursor: cursor}); !errors.Is(err, ErrBadCursor) {
				t.Errorf("%s: %v, want ErrBadCursor", name, err)
			}
		}
		var fe *FieldError
		if _, err := w.svc.List(ctx, w.acct, ListFilter{State: "viewed"}); !errors.As(err, &fe) || fe.Field != "state" {
			t.Errorf("unknown state: %v", err)
		}
	})
}

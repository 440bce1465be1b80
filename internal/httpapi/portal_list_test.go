package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

// Credentials of portalWorld (X-API-Key values).
const (
	keyReaderA = "reader-a:s3cret" // messages:read in the clinic
	keySenderA = "sender-a:s3cret" // messages:send only, in the clinic
	keyReaderB = "reader-b:s3cret" // messages:read in another account
)

// refusedNotices is a portal notifier for tests that never run the
// notice job.
type refusedNotices struct{}

func (refusedNotices) Notify(context.Context, portal.Notice) (string, error) {
	return "", errors.New("no notices in this test")
}

// portalWorld is the API over the real portal service on a real store:
// two accounts, and portal messages of both.
type portalWorld struct {
	h       *harness
	svc     *portal.Service
	a, b    string
	carrier string            // a message with a portal copy
	ids     map[string]string // name -> portal message id of account a
	theirs  string            // account b's portal message
}

func newPortalWorld(t *testing.T, s *store.Store) *portalWorld {
	t.Helper()
	ctx := context.Background()
	w := &portalWorld{carrier: store.NewID(), ids: map[string]string{}}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	log := audit.New(s, audit.Options{Now: clock})
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(s, mk, vault.Options{})
	for i, acct := range []*string{&w.a, &w.b} {
		creds, _, err := account.Bootstrap(ctx, s, account.NewStore(s), log, account.BootstrapOptions{AccountName: fmt.Sprint("Clinic ", i),
			OwnerEmail: fmt.Sprintf("owner%d@clinic.example", i), Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.EnsureAccountKey(ctx, creds.AccountID); err != nil {
			t.Fatal(err)
		}
		*acct = creds.AccountID
	}
	if err := queue.Migrate(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(s, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.svc, err = portal.New(ctx, s, v, mk, q, log, refusedNotices{}, portal.Options{BaseURL: "https://mail.clinic.example",
		Now: clock}); err != nil {
		t.Fatal(err)
	}
	if err := queue.AddWorker(q, &portal.NotifyWorker{Service: w.svc}); err != nil {
		t.Fatal(err)
	}
	deposit := func(accountID, messageID, to string) string {
		d, err := w.svc.Deposit(ctx, portal.Deposit{AccountID: accountID, MessageID: messageID, Recipient: to,
			Sender: "Dr Lee <results@clinic.example>", Content: portal.Content{Subject: "Your lab results", Text: "HbA1c 6.1%"}})
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		return d.ID
	}
	w.ids["first"] = deposit(w.a, w.carrier, "pat@patient.example")
	w.ids["second"] = deposit(w.a, "", "lee@patient.example")
	w.ids["recalled"] = deposit(w.a, "", "pat@patient.example")
	if _, err := w.svc.Recall(ctx, w.a, w.ids["recalled"], portal.Actor{Kind: "client", ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	w.theirs = deposit(w.b, "", "pat@patient.example")
	principals := map[string]auth.Principal{
		keyReaderA: {AccountID: w.a, ActorKind: auth.ActorClient, ActorID: "reader-a", Scopes: []string{auth.ScopeMessagesRead}},
		keySenderA: {AccountID: w.a, ActorKind: auth.ActorClient, ActorID: "sender-a", Scopes: []string{auth.ScopeMessagesSend}},
		keyReaderB: {AccountID: w.b, ActorKind: auth.ActorClient, ActorID: "reader-b", Scopes: []string{auth.ScopeMessagesRead}},
	}
	w.h = newHarness(t, func(o *Options) {
		o.Portal = w.svc
		o.Authenticate = func(r *http.Request) (auth.Principal, error) {
			key := r.Header.Get("X-API-Key")
			if key == "" {
				return auth.Principal{}, auth.ErrNoCredentials
			}
			if p, ok := principals[key]; ok {
				return p, nil
			}
			return auth.Principal{}, auth.ErrBadCredentials
		}
	})
	return w
}

// portalPage is the 200 body of GET /v1/portal-messages.
type portalPage struct {
	Data       []portal.Summary `json:"data"`
	NextCursor *string          `json:"next_cursor"`
}

// list gets a page as key and checks it against the contract.
func (w *portalWorld) list(t *testing.T, key, query string) portalPage {
	t.Helper()
	res := w.h.do(t, http.MethodGet, "/v1/portal-messages?"+query, nil, "X-API-Key", key)
	if res.status != http.StatusOK {
		t.Fatalf("GET ?%s: %d %s", query, res.status, res.body)
	}
	validateContract(t, contract(t), res)
	var p portalPage
	if err := json.Unmarshal(res.body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *portalWorld) names(p portalPage) []string {
	out := []string{}
	for _, m := range p.Data {
		name := m.ID
		for n, id := range w.ids {
			if id == m.ID {
				name = n
			}
		}
		if m.ID == w.theirs {
			name = "theirs"
		}
		out = append(out, name)
	}
	return out
}

func TestListPortalMessagesFiltersAndPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newPortalWorld(t, s)
		cases := []struct {
			name, query string
			want        []string
		}{
			{"everything of the account, newest first", "", []string{"recalled", "second", "first"}},
			{"by state", "state=recalled", []string{"recalled"}},
			{"active ones", "state=active", []string{"second", "first"}},
			{"by recipient", "recipient=" + url.QueryEscape("pat@patient.example"), []string{"recalled", "first"}},
			{"by message", "message_id=" + w.carrier, []string{"first"}},
			{"filters combine", "recipient=pat%40patient.example&state=active", []string{"first"}},
			{"nothing matches", "state=shredded", []string{}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := w.list(t, keyReaderA, c.query)
				if got := w.names(p); !slices.Equal(got, c.want) {
					t.Errorf("listed %v, want %v", got, c.want)
				}
				if p.NextCursor != nil {
					t.Errorf("next cursor %q on the only page", *p.NextCursor)
				}
			})
		}

		first := w.list(t, keyReaderA, "limit=2")
		if got := w.names(first); !slices.Equal(got, []string{"recalled", "second"}) || first.NextCursor == nil {
			t.Fatalf("first page %v, cursor %v", got, first.NextCursor)
		}
		rest := w.list(t, keyReaderA, "limit=2&cursor="+url.QueryEscape(*first.NextCursor))
		if got := w.names(rest); !slices.Equal(got, []string{"first"}) || rest.NextCursor != nil {
			t.Errorf("second page %v, cursor %v", got, rest.NextCursor)
		}

		// What an item says, and never the content.
		res := w.h.do(t, http.MethodGet, "/v1/portal-messages?message_id="+w.carrier, nil, "X-API-Key", keyReaderA)
		var p portalPage
		if err := json.Unmarshal(res.body, &p); err != nil || len(p.Data) != 1 {
			t.Fatalf("%v: %s", err, res.body)
		}
		m := p.Data[0]
		if m.MessageID != w.carrier || m.Recipient != "pat@patient.example" || m.State != portal.ListActive ||
			m.Attachments != 0 || m.FirstViewAt != nil || !m.ExpiresAt.Equal(m.CreatedAt.Add(30*24*time.Hour)) {
			t.Errorf("item %s", res.body)
		}
		for _, secret := range []string{"lab results", "HbA1c", "Dr Lee", "challenge"} {
			if strings.Contains(string(res.body), secret) {
				t.Errorf("the list carries %q: %s", secret, res.body)
			}
		}
	})
}

func TestListPortalMessagesIsTheCallersAccountOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newPortalWorld(t, s)
		if got := w.names(w.list(t, keyReaderB, "")); !slices.Equal(got, []string{"theirs"}) {
			t.Errorf("the other account lists %v", got)
		}
		if got := w.names(w.list(t, keyReaderA, "recipient=pat%40patient.example")); slices.Contains(got, "theirs") {
			t.Errorf("the clinic lists the other account's message: %v", got)
		}
		// Another account's id is not found, as an unknown one is.
		for _, id := range []string{w.ids["first"], "no-such-id"} {
			res := w.h.do(t, http.MethodGet, "/v1/portal-messages/"+id, nil, "X-API-Key", keyReaderB)
			if res.status != http.StatusNotFound || res.problem(t).Type != TypeNotFound {
				t.Errorf("GET another account's portal message: %d %s", res.status, res.body)
			}
			validateContract(t, contract(t), res)
		}
		if got := w.names(w.list(t, keyReaderB, "message_id="+w.carrier)); len(got) != 0 {
			t.Errorf("the other account finds the clinic's message by its message id: %v", got)
		}
	})
}

func TestListPortalMessagesRefusesBadQueriesAndCallers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newPortalWorld(t, s)
		forged := base64.RawURLEncoding.EncodeToString([]byte("not a cursor"))
		cases := []struct {
			name, query, key string
			status           int
			field            string
		}{
			{"a cursor List never made", "cursor=" + forged, keyReaderA, http.StatusBadRequest, "cursor"},
			{"a cursor that is not base64", "cursor=%21%21%21", keyReaderA, http.StatusBadRequest, "cursor"},
			{"an unknown state", "state=viewed", keyReaderA, http.StatusBadRequest, "state"},
			{"a limit of 0", "limit=0", keyReaderA, http.StatusBadRequest, "limit"},
			{"a limit that is no number", "limit=ten", keyReaderA, http.StatusBadRequest, "limit"},
			{"a limit above 500", "limit=501", keyReaderA, http.StatusBadRequest, "limit"},
			{"a recipient that is no address", "recipient=pat", keyReaderA, http.StatusBadRequest, "recipient"},
			{"an empty filter", "message_id=", keyReaderA, http.StatusBadRequest, "message_id"},
			{"a repeated filter", "state=active&state=expired", keyReaderA, http.StatusBadRequest, "state"},
			{"an account filter is no parameter", "account_id=other", keyReaderA, http.StatusBadRequest, "account_id"},
			{"no credential", "", "", http.StatusUnauthorized, ""},
			{"a wrong credential", "", "reader-a:wrong", http.StatusUnauthorized, ""},
			{"without messages:read", "", keySenderA, http.StatusForbidden, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var headers []string
				if c.key != "" {
					headers = []string{"X-API-Key", c.key}
				}
				res := w.h.do(t, http.MethodGet, "/v1/portal-messages?"+c.query, nil, headers...)
				if res.status != c.status {
					t.Fatalf("status %d, want %d: %s", res.status, c.status, res.body)
				}
				p := res.problem(t)
				validateContract(t, contract(t), res)
				if c.field == "" {
					return
				}
				if p.Type != TypeBadRequest || len(p.Errors) == 0 || p.Errors[0].Field != c.field {
					t.Errorf("problem %s, want a bad request about %s", res.body, c.field)
				}
			})
		}
	})
}

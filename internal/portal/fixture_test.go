package portal

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

const testBase = "https://portal.test"

// outbox records the notices the portal asks to send. It stands where the
// messages pipeline stands in production (the Notifier boundary); the
// end-to-end test in package cli runs the real pipeline.
type outbox struct {
	mu      sync.Mutex
	notices []Notice
	keys    map[string]string
	fail    error
}

func (o *outbox) Notify(_ context.Context, n Notice) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return "", o.fail
	}
	if id, ok := o.keys[n.IdempotencyKey]; ok && n.IdempotencyKey != "" {
		return id, nil
	}
	o.notices = append(o.notices, n)
	id := store.NewID()
	if n.IdempotencyKey != "" {
		o.keys[n.IdempotencyKey] = id
	}
	return id, nil
}

func (o *outbox) all() []Notice {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Notice(nil), o.notices...)
}

func (o *outbox) last(t *testing.T, purpose string) Notice {
	t.Helper()
	all := o.all()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Purpose == purpose {
			return all[i]
		}
	}
	t.Fatalf("no %s notice among %d", purpose, len(all))
	return Notice{}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is two accounts, the portal service over a real store, vault,
// audit log and (unstarted) queue, and its web pages behind TLS.
type world struct {
	t        *testing.T
	db       *store.Store
	svc      *Service
	out      *outbox
	clock    *clock
	vault    *vault.Vault
	audit    *audit.Log
	acct     string // clinic
	other    string // another tenant
	srv      *httptest.Server
	queue    *queue.Queue
	settings Options
}

func newWorld(t *testing.T, s *store.Store) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, db: s, out: &outbox{keys: map[string]string{}}, clock: &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}}
	w.audit = audit.New(s, audit.Options{Now: w.clock.now})
	accts := account.NewStore(s)
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	w.vault = vault.New(s, mk, vault.Options{})
	for i, name := range []string{"Riverside Clinic", "Other Practice"} {
		creds, _, err := account.Bootstrap(ctx, s, accts, w.audit, account.BootstrapOptions{AccountName: name,
			OwnerEmail: "owner" + string(rune('a'+i)) + "@clinic.example", Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.vault.EnsureAccountKey(ctx, creds.AccountID); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			w.acct = creds.AccountID
		} else {
			w.other = creds.AccountID
		}
	}
	if err := queue.Migrate(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	if w.queue, err = queue.New(s, queue.Options{}); err != nil {
		t.Fatal(err)
	}
	w.settings = Options{BaseURL: testBase, Now: w.clock.now, AccountName: accts.AccountName}
	if w.svc, err = New(ctx, s, w.vault, mk, w.queue, w.audit, w.out, w.settings); err != nil {
		t.Fatal(err)
	}
	if err := queue.AddWorker(w.queue, &NotifyWorker{Service: w.svc}); err != nil {
		t.Fatal(err)
	}
	return w
}

// deposit stores a message for pat@patient.example and sends its notice;
// it returns the portal id and the link token from the notice.
func (w *world) deposit(d Deposit) (string, string) {
	w.t.Helper()
	ctx := context.Background()
	if d.AccountID == "" {
		d.AccountID = w.acct
	}
	if d.Recipient == "" {
		d.Recipient = "pat@patient.example"
	}
	if d.Sender == "" {
		d.Sender = "Dr Lee <results@clinic.example>"
	}
	if d.MessageID == "" {
		d.MessageID = store.NewID()
	}
	if d.Content.Subject == "" && d.Raw == nil {
		d.Content = Content{Subject: "Your lab results", Text: "SSN 078-05-1120: HbA1c 6.1%"}
	}
	dep, err := w.svc.Deposit(ctx, d)
	if err != nil {
		w.t.Fatalf("deposit: %v", err)
	}
	if err := w.svc.sendNotice(ctx, d.AccountID, dep.ID); err != nil {
		w.t.Fatalf("notice: %v", err)
	}
	return dep.ID, linkToken(w.t, w.out.last(w.t, PurposeLink).Text)
}

var linkPattern = regexp.MustCompile(regexp.QuoteMeta(testBase) + `/p/([A-Za-z0-9_-]+)`)

func linkToken(t *testing.T, text string) string {
	t.Helper()
	m := linkPattern.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no portal link in %q", text)
	}
	return m[1]
}

var codePattern = regexp.MustCompile(`\b(\d{6})\b`)

// code asks for a code and returns it from the outbox.
func (w *world) code(token string) string {
	w.t.Helper()
	if err := w.svc.SendCode(context.Background(), token, Client{SourceIP: "192.0.2.7"}); err != nil {
		w.t.Fatalf("send code: %v", err)
	}
	m := codePattern.FindStringSubmatch(w.out.last(w.t, PurposeCode).Text)
	if m == nil {
		w.t.Fatal("no code in the code notice")
	}
	return m[1]
}

func (w *world) count(query string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.db.Reader().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// serve starts the portal's pages behind TLS and returns a browser-like
// client keeping cookies.
func (w *world) serve() *http.Client {
	w.t.Helper()
	wb, err := NewWeb(w.svc)
	if err != nil {
		w.t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range wb.Routes() {
		mux.Handle(p, h)
	}
	w.srv = httptest.NewTLSServer(mux)
	w.t.Cleanup(w.srv.Close)
	c := w.srv.Client()
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page: %.300s", page)
	}
	return m[1]
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

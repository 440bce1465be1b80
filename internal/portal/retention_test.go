package portal

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// retentionWorld is world wired as the composition root wires it: the
// portal reads each account's period from its retention policy, and the
// retention sweeper runs the portal's Expiry.
type retentionWorld struct {
	*world
	policies *retention.Service
	sweeper  *retention.Sweeper
}

func newRetentionWorld(t *testing.T, s *store.Store) *retentionWorld {
	t.Helper()
	w := &retentionWorld{world: newWorld(t, s)}
	w.policies = retention.New(s, w.audit, retention.Options{Now: w.clock.now})
	w.svc.opts.Lifetime = func(ctx context.Context, accountID string) (time.Duration, error) {
		p, err := w.policies.Policy(ctx, accountID)
		return time.Duration(p.PortalMessageDays) * retention.Day, err
	}
	var err error
	if w.sweeper, err = retention.NewSweeper(s, w.policies, w.audit, retention.SweeperOptions{Now: w.clock.now}); err != nil {
		t.Fatal(err)
	}
	w.sweeper.Register(retention.KindPortalMessage, &Expiry{DB: s, Audit: w.audit, Now: w.clock.now})
	return w
}

// setPortalDays sets the account's portal period, keeping the defaults
// of the other kinds.
func (w *retentionWorld) setPortalDays(accountID string, days int) {
	w.t.Helper()
	p := retention.DefaultPolicy()
	p.PortalMessageDays = days
	actor := account.Actor{Principal: auth.Principal{AccountID: accountID, ActorKind: auth.ActorUser, ActorID: "owner"}}
	if _, err := w.policies.SetPolicy(context.Background(), actor, p); err != nil {
		w.t.Fatal(err)
	}
}

// contentKept reports whether a portal message still holds its content.
func (w *retentionWorld) contentKept(accountID, id string) bool {
	w.t.Helper()
	return w.count("SELECT count(*) FROM portal_messages WHERE account_id = $1 AND id = $2 AND content_sealed IS NOT NULL "+
		"AND shredded_at IS NULL", accountID, id) == 1
}

func TestShortenedPolicyExpiresStoredMessagesAtTheNextSweep(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newRetentionWorld(t, s)
		ctx := context.Background()
		c := w.serve()
		// Deposited under the default 30 days.
		opened, tokenOpened := w.deposit(Deposit{})
		swept, tokenSwept := w.deposit(Deposit{})
		other, tokenOther := w.deposit(Deposit{AccountID: w.other})
		sess, err := w.svc.Verify(ctx, tokenOpened, w.code(tokenOpened), "", Client{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.svc.SendReply(ctx, sess, Reply{Text: "Thanks, doctor."}, Client{}); err != nil {
			t.Fatal(err)
		}
		w.clock.advance(3 * retention.Day)
		young, tokenYoung := w.deposit(Deposit{})
		var sweptMessage string
		if err := s.Reader().QueryRow(ctx, "SELECT message_id FROM portal_messages WHERE id = $1", swept).Scan(&sweptMessage); err != nil {
			t.Fatal(err)
		}

		w.setPortalDays(w.acct, 2)
		// Before any sweep the read path already applies the new period.
		if _, err := w.svc.Session(ctx, tokenOpened, sess.Token()); !errors.Is(err, ErrExpired) {
			t.Errorf("a session on a message older than the new period: %v", err)
		}
		if st, _ := w.svc.Get(ctx, w.acct, swept); st.State != "expired" || st.ContentGone ||
			!st.ExpiresAt.Equal(st.CreatedAt.Add(2*retention.Day)) {
			t.Errorf("status before the sweep: %+v", st)
		}

		rep, err := w.sweeper.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Shredded[retention.KindPortalMessage] != 1 { // the opened one went on access
			t.Errorf("sweep report: %+v", rep)
		}
		for _, id := range []string{opened, swept} {
			if w.contentKept(w.acct, id) {
				t.Errorf("%s kept its content past the shortened period", id)
			}
			if st, err := w.svc.Get(ctx, w.acct, id); err != nil || st.State != "expired" || !st.ContentGone || st.Recipient == "" {
				t.Errorf("status of a shredded message (metadata must stay): %+v %v", st, err)
			}
		}
		if n := w.count("SELECT count(*) FROM portal_replies WHERE portal_message_id = $1 AND body_sealed IS NOT NULL", opened); n != 0 {
			t.Errorf("%d replies kept their body", n)
		}
		if n := w.count("SELECT count(*) FROM message_events WHERE message_id = $1 AND type = $2", sweptMessage, EventExpired); n != 1 {
			t.Errorf("%d portal_expired events for the swept message, want 1", n)
		}
		if n := w.count("SELECT count(*) FROM message_events WHERE message_id = $1 AND type = $2", sweptMessage, EventDeposited); n != 1 {
			t.Error("the deposit event went with the content")
		}
		if p := get(t, c, w.srv.URL+"/p/"+tokenSwept); p.status != 410 || !strings.Contains(p.body, "expired") {
			t.Errorf("page of a swept message: %d %.200s", p.status, p.body)
		}

		// Younger than the new period, or another account's: untouched.
		if !w.contentKept(w.acct, young) || !w.contentKept(w.other, other) {
			t.Error("a message inside its period lost its content")
		}
		for _, tok := range []string{tokenYoung, tokenOther} {
			if _, err := w.svc.Open(ctx, tok); err != nil {
				t.Errorf("a message inside its period: %v", err)
			}
		}

		// Audited per message and, with counts, per account.
		if n := w.count("SELECT count(*) FROM audit_events WHERE account_id = $1 AND action = 'portal.expired'", w.acct); n != 2 {
			t.Errorf("%d portal.expired audit events, want 2", n)
		}
		page, err := w.audit.List(ctx, w.acct, audit.Query{Action: "retention.shredded"})
		if err != nil || len(page.Events) != 1 || page.Events[0].Details["portal_message"] != "1" {
			t.Fatalf("retention.shredded: %+v %v", page.Events, err)
		}
		if page, _ := w.audit.List(ctx, w.other, audit.Query{Action: "retention.shredded"}); len(page.Events) != 0 {
			t.Error("an account that lost nothing was audited as shredded")
		}
		if rep, err := w.sweeper.Sweep(ctx); err != nil || rep.Shredded[retention.KindPortalMessage] != 0 {
			t.Errorf("a second sweep: %+v %v", rep, err)
		}
	})
}

func TestNoticeAndExpiryFollowTheAccountsPolicy(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newRetentionWorld(t, s)
		ctx := context.Background()
		w.setPortalDays(w.acct, 7)
		id, token := w.deposit(Deposit{})
		if n := w.out.last(t, PurposeLink); !strings.Contains(n.Text, "up to 7 days") {
			t.Errorf("the notice does not state the account's period: %q", n.Text)
		}
		// A longer period reaches stored messages too.
		w.setPortalDays(w.acct, 10)
		w.clock.advance(8 * retention.Day)
		if _, err := w.svc.Open(ctx, token); err != nil {
			t.Errorf("a message within the lengthened period: %v", err)
		}
		if rep, _ := w.sweeper.Sweep(ctx); rep.Shredded[retention.KindPortalMessage] != 0 || !w.contentKept(w.acct, id) {
			t.Errorf("swept inside the lengthened period: %+v", rep)
		}
		w.clock.advance(2 * retention.Day)
		if _, err := w.svc.Open(ctx, token); !errors.Is(err, ErrExpired) {
			t.Errorf("a message at the end of its period: %v", err)
		}
	})
}

func TestExpiryShredsOnlyTheAccountsMessagesInBatches(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newRetentionWorld(t, s)
		ctx := context.Background()
		var mine []string
		for range 5 {
			id, _ := w.deposit(Deposit{})
			mine = append(mine, id)
		}
		theirs, _ := w.deposit(Deposit{AccountID: w.other})
		e := &Expiry{DB: s, Audit: w.audit, Now: w.clock.now, BatchSize: 2}
		if n, done, err := e.Shred(ctx, w.acct, w.clock.now(), time.Now().Add(-time.Second)); err != nil || n != 0 || done {
			t.Fatalf("Shred past its deadline = %d, %v, %v", n, done, err)
		}
		// A cutoff after every deposit: all of the account's messages are due.
		n, done, err := e.Shred(ctx, w.acct, w.clock.now().Add(time.Second), time.Now().Add(time.Minute))
		if err != nil || n != 5 || !done {
			t.Fatalf("Shred = %d, %v, %v; want 5, done", n, done, err)
		}
		for _, id := range mine {
			if w.contentKept(w.acct, id) {
				t.Errorf("%s kept its content", id)
			}
		}
		if !w.contentKept(w.other, theirs) {
			t.Error("shredding one account removed another account's content")
		}
		if n, _, err := e.Shred(ctx, w.acct, w.clock.now().Add(time.Second), time.Now().Add(time.Minute)); err != nil || n != 0 {
			t.Errorf("Shred again = %d %v", n, err)
		}
	})
}

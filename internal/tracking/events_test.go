package tracking

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

const newsletter = `<html><body><p>Flu shots are here.</p>
<a href="https://clinic.example/flu?patient=123">Book</a>
<a href="https://clinic.example/hours">Hours</a>
<a href="https://clinic.example/flu?patient=123">Book again</a>
<a href="mailto:care@clinic.example">Mail us</a>
<a data-sp-unsubscribe href="#">Unsubscribe</a></body></html>`

func TestInstrumentedMarketingMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		m := w.send(w.actor, newsletter, "pat@patient.example", "sam@patient.example")
		for i, body := range m.html {
			if got := tokens(body, "t/c"); len(got) != 3 {
				t.Errorf("recipient %d: %d tracked links, want 3: %s", i, len(got), body)
			}
			if got := tokens(body, "t/o"); len(got) != 1 || !strings.Contains(body, `alt=""`) {
				t.Errorf("recipient %d: pixel missing: %s", i, body)
			}
			if !strings.Contains(body, "mailto:care@clinic.example") || strings.Contains(body, "patient=123") {
				t.Errorf("recipient %d: mailto rewritten or a target left in the body: %s", i, body)
			}
			if len(m.headers[i]) != 2 || !strings.HasPrefix(m.headers[i][0], "List-Unsubscribe: <https://sp.example/u/") ||
				m.headers[i][1] != "List-Unsubscribe-Post: List-Unsubscribe=One-Click" {
				t.Errorf("recipient %d headers: %q", i, m.headers[i])
			}
			unsub := tokens(body, "u")
			if len(unsub) != 1 || !strings.Contains(m.headers[i][0], unsub[0]) {
				t.Errorf("recipient %d: the body's unsubscribe link is not the header's", i)
			}
		}
		if m.html[0] == m.html[1] {
			t.Error("both recipients got the same tokens")
		}
		var n int
		var sealed []byte
		if err := s.Reader().QueryRow(context.Background(), "SELECT count(*) FROM tracking_links WHERE account_id = $1 AND message_id = $2",
			w.actor.Principal.AccountID, m.id).Scan(&n); err != nil || n != 2 {
			t.Errorf("stored links: %d (%v), want 2 distinct", n, err)
		}
		if err := s.Reader().QueryRow(context.Background(), "SELECT target_sealed FROM tracking_links WHERE message_id = $1 AND link_index = 0",
			m.id).Scan(&sealed); err != nil || strings.Contains(string(sealed), "clinic.example") {
			t.Errorf("a stored target is readable without the account's key (%v)", err)
		}
	})
}

func TestOpenRecordsTheFirstOpenOfEachRecipientOnly(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := w.ctx()
		m := w.send(w.actor, newsletter, "pat@patient.example", "sam@patient.example")
		pat := tokens(m.html[0], "t/o")[0]
		for range 3 {
			if err := w.tracking.Open(ctx, pat, "Mozilla/5.0"); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.tracking.Open(ctx, tokens(m.html[1], "t/o")[0], "Mozilla/5.0 (Windows NT 10.0; Win64; x64) via ggpht.com GoogleImageProxy"); err != nil {
			t.Fatal(err)
		}
		got := w.events(w.actor.Principal.AccountID, m.id, EventOpened)
		if len(got) != 2 || got[0].rcpt != 0 || got[0].details != `{"user_agent":"apple-mpp-proxy"}` ||
			got[1].rcpt != 1 || got[1].details != `{"user_agent":"gmail-proxy"}` {
			t.Errorf("opened events: %+v", got)
		}
		// A click token is not an open token, and a tampered one is nothing.
		click := tokens(m.html[0], "t/c")[0]
		for _, bad := range []string{click, pat[:len(pat)-1] + flip(pat[len(pat)-1]), "x"} {
			if err := w.tracking.Open(ctx, bad, ""); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Open(%q) = %v, want ErrInvalidToken", bad, err)
			}
		}
	})
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestClickRedirectsOnlyToTheStoredTargetOfItsMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := w.ctx()
		a := w.send(w.actor, newsletter, "pat@patient.example")
		b := w.send(w.actor, `<a href="https://elsewhere.example/">x</a>`, "pat@patient.example")
		links := tokens(a.html[0], "t/c")
		want := []string{"https://clinic.example/flu?patient=123", "https://clinic.example/hours", "https://clinic.example/flu?patient=123"}
		for i, tok := range links {
			got, err := w.tracking.Click(ctx, tok, "Mozilla/5.0 (Macintosh) AppleWebKit Safari", true)
			if err != nil || got != want[i] {
				t.Errorf("click %d: %q, %v; want %q", i, got, err, want[i])
			}
		}
		if got := w.events(w.actor.Principal.AccountID, a.id, EventClicked); len(got) != 3 ||
			got[0].details != `{"link_index":0,"user_agent":"browser"}` || got[1].details != `{"link_index":1,"user_agent":"browser"}` {
			t.Errorf("clicked events: %+v", got)
		}
		// Past the cap, clicks still redirect but are not recorded.
		for range MaxClicksRecorded {
			if _, err := w.tracking.Click(ctx, links[0], "", true); err != nil {
				t.Fatal(err)
			}
		}
		if got := w.events(w.actor.Principal.AccountID, a.id, EventClicked); len(got) != MaxClicksRecorded {
			t.Errorf("clicked events after replaying a link: %d, want the cap %d", len(got), MaxClicksRecorded)
		}
		// HEAD (scanners) resolves without recording.
		if _, err := w.tracking.Click(ctx, links[1], "", false); err != nil {
			t.Fatal(err)
		}
		if got := w.events(w.actor.Principal.AccountID, a.id, EventClicked); len(got) != MaxClicksRecorded {
			t.Errorf("a HEAD recorded a click: %d events", len(got))
		}
		// Signed tokens for links that do not exist, for the other message's
		// link in this one, or for this message under another account.
		acct := w.actor.Principal.AccountID
		forged := []Ref{
			{Purpose: PurposeClick, AccountID: acct, MessageID: a.id, Link: 7},
			{Purpose: PurposeClick, AccountID: acct, MessageID: b.id, Link: 1},
			{Purpose: PurposeClick, AccountID: w.other.Principal.AccountID, MessageID: a.id, Link: 0},
			{Purpose: PurposeClick, AccountID: acct, MessageID: a.id, Rcpt: 5, Link: 0},
		}
		for _, r := range forged {
			tok, _ := w.tracking.signer.encode(r)
			if got, err := w.tracking.Click(ctx, tok, "", true); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Click(%+v) = %q, %v; want ErrInvalidToken", r, got, err)
			}
		}
		if got, err := w.tracking.Click(ctx, tokens(b.html[0], "t/c")[0], "", true); err != nil || got != "https://elsewhere.example/" {
			t.Errorf("message b's link: %q, %v", got, err)
		}
	})
}

func TestOneClickUnsubscribeSuppressesOnceAndLaterMailIsSuppressed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := w.ctx()
		acct := w.actor.Principal.AccountID
		m := w.send(w.actor, newsletter, "Pat@Patient.example")
		tok := tokens(m.html[0], "u")[0]
		u, err := w.tracking.Unsubscription(ctx, tok)
		if err != nil || u.Done || u.Address != "P***@patient.example" || u.From != "news@clinic.example" {
			t.Fatalf("before: %+v, %v", u, err)
		}
		for range 2 {
			if err := w.tracking.Unsubscribe(ctx, tok, MethodOneClick); err != nil {
				t.Fatal(err)
			}
		}
		if got := w.events(acct, m.id, EventUnsubscribed); len(got) != 1 || got[0].details != `{"method":"one-click"}` {
			t.Errorf("unsubscribed events: %+v", got)
		}
		list, err := w.msgs.Suppressions(ctx, acct)
		if err != nil || len(list) != 1 || list[0].Address != "pat@patient.example" || list[0].Reason != messages.ReasonUnsubscribe {
			t.Errorf("suppressions: %+v, %v", list, err)
		}
		if u, err := w.tracking.Unsubscription(ctx, tok); err != nil || !u.Done {
			t.Errorf("after: %+v, %v", u, err)
		}
		later, err := w.msgs.Send(ctx, w.actor, messages.Request{From: "news@clinic.example", To: []string{"pat@patient.example"},
			Subject: "More news", Text: "x", Kind: messages.KindMarketing}, "")
		if err != nil || later.Recipients[0].State != messages.StateSuppressed {
			t.Errorf("a later send: %+v, %v", later, err)
		}
		// Transactional mail (reminders, results) still reaches the address.
		reminder, err := w.msgs.Send(ctx, w.actor, messages.Request{From: "reminders@clinic.example", To: []string{"pat@patient.example"},
			Subject: "Your appointment", Text: "Tomorrow at 9:00."}, "")
		if err != nil || reminder.Recipients[0].State != messages.StateQueued {
			t.Errorf("a transactional message after unsubscribing: %+v, %v", reminder, err)
		}
		// The other account still mails the address.
		if list, _ := w.msgs.Suppressions(ctx, w.other.Principal.AccountID); len(list) != 0 {
			t.Errorf("the other account's suppressions: %+v", list)
		}
		// An open token does not unsubscribe.
		if err := w.tracking.Unsubscribe(ctx, tokens(m.html[0], "t/o")[0], MethodOneClick); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("open token unsubscribed: %v", err)
		}
	})
}

func TestPlan(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := w.ctx()
		acct := w.actor.Principal.AccountID
		yes, no := true, false
		check := func(name, kind string, tr messages.Tracking, want Plan) {
			t.Helper()
			if got, err := w.tracking.PlanFor(ctx, acct, kind, tr); err != nil || got != want {
				t.Errorf("%s: %+v, %v; want %+v", name, got, err, want)
			}
		}
		check("transactional mail is untracked by default", messages.KindTransactional, messages.Tracking{}, Plan{})
		check("marketing is tracked and unsubscribable by default", messages.KindMarketing, messages.Tracking{}, Plan{true, true, true})
		check("a message may turn tracking on", messages.KindTransactional, messages.Tracking{Opens: &yes}, Plan{Opens: true})
		check("a message may turn clicks off", messages.KindMarketing, messages.Tracking{Clicks: &no}, Plan{Opens: true, Unsubscribe: true})
		if err := w.tracking.SetAccountSettings(ctx, acct, messages.KindMarketing, Settings{Opens: false, Clicks: true}); err != nil {
			t.Fatal(err)
		}
		check("the account's default applies", messages.KindMarketing, messages.Tracking{}, Plan{Clicks: true, Unsubscribe: true})
		check("the message's choice beats the account's", messages.KindMarketing, messages.Tracking{Opens: &yes, Clicks: &no}, Plan{Opens: true, Unsubscribe: true})
		if got, _ := w.tracking.AccountSettings(ctx, w.other.Principal.AccountID, messages.KindMarketing); got != DefaultSettings(messages.KindMarketing) {
			t.Errorf("another account's settings changed: %+v", got)
		}
		if err := w.tracking.SetAccountSettings(ctx, acct, "bulk", Settings{}); err == nil {
			t.Error("an unknown kind was accepted")
		}
		off := *w.tracking
		off.base = ""
		if got, _ := off.PlanFor(ctx, acct, messages.KindMarketing, messages.Tracking{Opens: &yes}); got.Any() {
			t.Errorf("without a public URL: %+v", got)
		}
	})
}

func TestTokenKeyIsSharedByNodes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := w.ctx()
		m := w.send(w.actor, newsletter, "pat@patient.example")
		node2, err := New(ctx, s, w.tracking.vault, w.master, Options{BaseURL: testBase})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := node2.Click(ctx, tokens(m.html[0], "t/c")[1], "", true); err != nil || got != "https://clinic.example/hours" {
			t.Errorf("a link made on one node, clicked on another: %q, %v", got, err)
		}
	})
}

func TestUnsubscribeHeadersAreComposedUnfolded(t *testing.T) {
	t.Parallel()
	u := testBase + "/u/" + strings.Repeat("A", 75)
	from, _ := mail.ParseAddress("from", "news@clinic.example")
	to, _ := mail.ParseAddress("to", "pat@patient.example")
	raw, _, err := mail.Build(mail.Draft{From: from, To: []mail.Address{to}, Subject: "News", Text: "x", PlatformHeaders: UnsubscribeHeaders(u)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\r\nList-Unsubscribe: <" + u + ">\r\n", "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the message lacks %q:\n%s", want, raw)
		}
	}
	// Custom headers still may not set them.
	_, _, err = mail.Build(mail.Draft{From: from, To: []mail.Address{to}, Text: "x", Headers: UnsubscribeHeaders(u)})
	if !errors.Is(err, mail.ErrInvalid) {
		t.Errorf("List-Unsubscribe as a custom header: %v", err)
	}
}

func TestUntrackedMailKeepsOneSharedBody(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := w.ctx()
		acc, err := w.msgs.Send(ctx, w.actor, messages.Request{From: "results@clinic.example", To: []string{"pat@patient.example", "sam@patient.example"},
			Subject: "Results", HTML: `<a href="https://portal.clinic.example/r">results</a>`}, "")
		if err != nil {
			t.Fatal(err)
		}
		var own, links int
		if err := s.Reader().QueryRow(ctx, "SELECT count(*) FROM message_recipients WHERE account_id = $1 AND message_id = $2 AND body_sealed IS NOT NULL",
			w.actor.Principal.AccountID, acc.ID).Scan(&own); err != nil || own != 0 {
			t.Errorf("transactional recipients with bodies of their own: %d (%v)", own, err)
		}
		if err := s.Reader().QueryRow(ctx, "SELECT count(*) FROM tracking_links WHERE message_id = $1", acc.ID).Scan(&links); err != nil || links != 0 {
			t.Errorf("tracked links of an untracked message: %d (%v)", links, err)
		}
	})
}

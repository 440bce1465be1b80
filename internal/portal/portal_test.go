package portal

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestDepositSealsTheContentAndTheNoticeCarriesNoPHI(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		id, token := w.deposit(Deposit{Content: Content{Subject: "Your lab results", Text: "SSN 078-05-1120: HbA1c 6.1%",
			Attachments: []Attachment{{Filename: "results.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7 glucose 140 mg/dL")}}}})

		var sealed, tokenHash []byte
		if err := s.Reader().QueryRow(ctx, "SELECT content_sealed, token_hash FROM portal_messages WHERE account_id = $1 AND id = $2",
			w.acct, id).Scan(&sealed, &tokenHash); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"078-05-1120", "lab results", "glucose", "results.pdf"} {
			if bytes.Contains(sealed, []byte(secret)) {
				t.Errorf("the stored content shows %q", secret)
			}
		}
		if bytes.Contains(tokenHash, []byte(token)) || len(tokenHash) != 32 {
			t.Error("the link token is stored other than as its SHA-256")
		}
		// The ciphertext is bound to its account and record.
		if _, err := w.vault.Open(ctx, w.acct, sealed, ContentAD(w.acct, "another-id")); err == nil {
			t.Error("the content opens under another record's associated data")
		}

		n := w.out.last(t, PurposeLink)
		for _, phi := range []string{"078-05-1120", "lab results", "HbA1c", "results.pdf", "Dr Lee"} {
			if strings.Contains(n.Subject+n.Text+n.HTML+n.From, phi) {
				t.Errorf("the notice shows %q", phi)
			}
		}
		if n.Subject != "You have a secure message from Riverside Clinic" || n.To != "pat@patient.example" ||
			!strings.Contains(n.From, "results@clinic.example") {
			t.Errorf("notice: %+v", n)
		}
		if w.count("SELECT count(*) FROM portal_messages WHERE id = $1 AND notify_sealed IS NULL AND notified_at IS NOT NULL", id) != 1 {
			t.Error("the sealed link is kept after the notice was accepted")
		}
		// A retried notice job sends nothing more.
		before := len(w.out.all())
		if err := w.svc.sendNotice(ctx, w.acct, id); err != nil || len(w.out.all()) != before {
			t.Errorf("retried notice: %v, %d notices", err, len(w.out.all())-before)
		}
		if w.count("SELECT count(*) FROM river_job WHERE kind = 'portal.notify'") != 1 {
			t.Error("the deposit did not queue its notice job")
		}
	})
}

func TestDepositRefusesBadInput(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ok := Content{Subject: "s", Text: "t"}
		cases := []struct {
			name  string
			d     Deposit
			field string
		}{
			{"recipient is not an address", Deposit{Recipient: "not an address", Content: ok}, "to"},
			{"header injection in the recipient", Deposit{Recipient: "pat@patient.example\r\nBcc: x@evil.example", Content: ok}, "to"},
			{"sender is not an address", Deposit{Sender: "nobody", Content: ok}, "from"},
			{"no body at all", Deposit{Content: Content{Subject: "empty"}}, "text"},
			{"attachment name with a path", Deposit{Content: Content{Text: "x", Attachments: []Attachment{{Filename: "../etc/passwd", Content: []byte("x")}}}}, "attachments[0].filename"},
			{"attachment with a bad type", Deposit{Content: Content{Text: "x", Attachments: []Attachment{{Filename: "a.bin", ContentType: "nonsense", Content: []byte("x")}}}}, "attachments[0].content_type"},
			{"short passphrase", Deposit{Content: ok, Challenge: &Challenge{Kind: ChallengePassphrase, Answer: "ab"}}, "challenge.answer"},
			{"date of birth not a date", Deposit{Content: ok, Challenge: &Challenge{Kind: ChallengeDOB, Answer: "1980-13-40"}}, "challenge.answer"},
			{"unknown challenge", Deposit{Content: ok, Challenge: &Challenge{Kind: "riddle", Answer: "sphinx"}}, "challenge.kind"},
			{"raw message that does not parse", Deposit{Raw: []byte("\x00\x01 not mail")}, "raw"},
		}
		for _, c := range cases {
			c.d.AccountID = w.acct
			if c.d.Recipient == "" {
				c.d.Recipient = "pat@patient.example"
			}
			if c.d.Sender == "" {
				c.d.Sender = "results@clinic.example"
			}
			_, err := w.svc.Deposit(context.Background(), c.d)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("%s: %v, want a refusal of %s", c.name, err, c.field)
			}
		}
		if w.count("SELECT count(*) FROM portal_messages") != 0 {
			t.Error("a refused deposit stored something")
		}
	})
}

func TestCodesWorkOnceAndExpire(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		_, token := w.deposit(Deposit{})
		c := Client{SourceIP: "192.0.2.7"}

		code := w.code(token)
		if n := w.out.last(t, PurposeCode); strings.Contains(n.Text+n.Subject, "078-05-1120") {
			t.Error("the code notice shows content")
		}
		if err := w.svc.SendCode(ctx, token, c); !errors.Is(err, ErrCodeTooSoon) {
			t.Errorf("a second code at once: %v", err)
		}
		sess, err := w.svc.Verify(ctx, token, code, "", c)
		if err != nil || sess.Token() == "" {
			t.Fatalf("the right code: %v", err)
		}
		if _, err := w.svc.Verify(ctx, token, code, "", c); !errors.Is(err, ErrBadCode) {
			t.Errorf("the same code again: %v", err)
		}

		w.clock.advance(time.Minute)
		old := w.code(token)
		w.clock.advance(time.Minute)
		fresh := w.code(token)
		if old != fresh {
			if _, err := w.svc.Verify(ctx, token, old, "", c); !errors.Is(err, ErrBadCode) {
				t.Errorf("a replaced code: %v", err)
			}
		}
		w.clock.advance(11 * time.Minute)
		if _, err := w.svc.Verify(ctx, token, fresh, "", c); !errors.Is(err, ErrBadCode) {
			t.Errorf("a code past its ten minutes: %v", err)
		}
		if w.count("SELECT count(*) FROM portal_messages WHERE code_hash IS NOT NULL AND code_hash = $1", []byte(fresh)) != 0 {
			t.Error("the code is stored in the clear")
		}
	})
}

func TestCodeBruteForceLocksTheLink(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		id, token := w.deposit(Deposit{})
		c := Client{SourceIP: "192.0.2.66"}
		code := w.code(token)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for i := 1; i <= 4; i++ {
			if _, err := w.svc.Verify(ctx, token, wrong, "", c); !errors.Is(err, ErrBadCode) {
				t.Fatalf("wrong code %d: %v", i, err)
			}
		}
		if _, err := w.svc.Verify(ctx, token, wrong, "", c); !errors.Is(err, ErrLocked) {
			t.Fatalf("the fifth wrong code: %v", err)
		}
		// Locked: even the right code fails, and asking for codes too.
		if _, err := w.svc.Verify(ctx, token, code, "", c); !errors.Is(err, ErrLocked) {
			t.Errorf("the right code while locked: %v", err)
		}
		if err := w.svc.SendCode(ctx, token, c); !errors.Is(err, ErrLocked) {
			t.Errorf("a new code while locked: %v", err)
		}
		if got := w.count("SELECT count(*) FROM audit_events WHERE account_id = $1 AND action = 'portal.code_failed'", w.acct); got != 5 {
			t.Errorf("%d failed codes audited, want 5", got)
		}
		if got := w.count("SELECT count(*) FROM audit_events WHERE account_id = $1 AND action = 'portal.locked'", w.acct); got != 1 {
			t.Errorf("%d lockouts audited, want 1", got)
		}
		if got := w.count("SELECT count(*) FROM message_events WHERE account_id = $1 AND type = $2", w.acct, EventCodeFailed); got != 5 {
			t.Errorf("%d portal_code_failed events", got)
		}
		if got := w.count("SELECT count(*) FROM audit_events WHERE account_id = $1 AND details LIKE $2", w.acct, "%"+code+"%"); got != 0 {
			t.Error("a code reached the audit log")
		}
		st, err := w.svc.Get(ctx, w.acct, id)
		if err != nil || !st.Locked {
			t.Errorf("status while locked: %+v %v", st, err)
		}

		// After the lockout the burned code stays dead; a new one works.
		w.clock.advance(16 * time.Minute)
		if _, err := w.svc.Verify(ctx, token, code, "", c); !errors.Is(err, ErrBadCode) {
			t.Errorf("the burned code after the lockout: %v", err)
		}
		if _, err := w.svc.Verify(ctx, token, w.code(token), "", c); err != nil {
			t.Errorf("a new code after the lockout: %v", err)
		}
	})
}

func TestChallengeIsAskedWithTheCode(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		id, token := w.deposit(Deposit{Challenge: &Challenge{Kind: ChallengePassphrase, Answer: "Blue Heron", Hint: "From your visit"}})
		var hash string
		if err := s.Reader().QueryRow(ctx, "SELECT challenge_hash FROM portal_messages WHERE id = $1", id).Scan(&hash); err != nil ||
			!strings.HasPrefix(hash, "$argon2id$") || strings.Contains(strings.ToLower(hash), "heron") {
			t.Fatalf("challenge stored as %q (%v)", hash, err)
		}
		c := Client{}
		code := w.code(token)
		if _, err := w.svc.Verify(ctx, token, code, "red heron", c); !errors.Is(err, ErrBadCode) {
			t.Errorf("the wrong passphrase: %v", err)
		}
		if _, err := w.svc.Verify(ctx, token, code, "", c); !errors.Is(err, ErrBadCode) {
			t.Errorf("no passphrase: %v", err)
		}
		if _, err := w.svc.Verify(ctx, token, code, "  blue   HERON ", c); err != nil {
			t.Errorf("the passphrase typed loosely: %v", err)
		}
	})
}

func TestTamperedAndUnknownLinksAreOneAnswer(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		_, token := w.deposit(Deposit{})
		flip := []byte(token)
		if flip[5] == 'A' {
			flip[5] = 'B'
		} else {
			flip[5] = 'A'
		}
		for name, tok := range map[string]string{"one character changed": string(flip), "truncated": token[:len(token)-1],
			"extended": token + "A", "empty": "", "very long": strings.Repeat("A", 500), "another token's shape": strings.Repeat("x", 43)} {
			if _, err := w.svc.Open(context.Background(), tok); !errors.Is(err, ErrLinkInvalid) {
				t.Errorf("%s: %v", name, err)
			}
			if err := w.svc.SendCode(context.Background(), tok, Client{}); !errors.Is(err, ErrLinkInvalid) {
				t.Errorf("%s, asking for a code: %v", name, err)
			}
		}
		if len(w.out.all()) != 1 {
			t.Error("a bad link got a code sent")
		}
	})
}

func TestExpiredMessagesAreShredded(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newRetentionWorld(t, s)
		ctx := context.Background()
		w.setPortalDays(w.acct, 2)
		opened, tokenA := w.deposit(Deposit{})
		swept, _ := w.deposit(Deposit{})
		_, tokenOther := w.deposit(Deposit{AccountID: w.other}) // 30 days, the default
		sess, err := w.svc.Verify(ctx, tokenA, w.code(tokenA), "", Client{})
		if err != nil {
			t.Fatal(err)
		}

		w.clock.advance(49 * time.Hour)
		// On access, before any sweep.
		if _, err := w.svc.Open(ctx, tokenA); !errors.Is(err, ErrExpired) {
			t.Errorf("an expired link: %v", err)
		}
		if _, err := w.svc.Session(ctx, tokenA, sess.Token()); !errors.Is(err, ErrExpired) {
			t.Errorf("a session on an expired message: %v", err)
		}
		// By the retention sweeper.
		rep, err := w.sweeper.Sweep(ctx)
		if err != nil || rep.Shredded[retention.KindPortalMessage] != 1 {
			t.Fatalf("sweep: %+v %v", rep, err)
		}
		for _, id := range []string{opened, swept} {
			if w.count("SELECT count(*) FROM portal_messages WHERE id = $1 AND content_sealed IS NULL AND shredded_at IS NOT NULL", id) != 1 {
				t.Errorf("%s kept its content past expiry", id)
			}
			if st, _ := w.svc.Get(ctx, w.acct, id); st.State != "expired" || !st.ContentGone {
				t.Errorf("status of an expired message: %+v", st)
			}
		}
		if got := w.count("SELECT count(*) FROM audit_events WHERE account_id = $1 AND action = 'portal.expired'", w.acct); got != 2 {
			t.Errorf("%d expiries audited, want 2", got)
		}
		if _, err := w.svc.Open(ctx, tokenOther); err != nil {
			t.Errorf("another account's message with the default retention: %v", err)
		}
		if rep, _ := w.sweeper.Sweep(ctx); rep.Shredded[retention.KindPortalMessage] != 0 {
			t.Errorf("a second sweep shredded %d again", rep.Shredded[retention.KindPortalMessage])
		}
		// The portal's own sweep deletes the sessions that ended a day ago.
		w.clock.advance(25 * time.Hour)
		if n, err := w.svc.Sweep(ctx); err != nil || n != 1 {
			t.Errorf("session sweep: %d %v", n, err)
		}
	})
}

func TestRecallWithdrawsTheMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		id, token := w.deposit(Deposit{})
		sess, err := w.svc.Verify(ctx, token, w.code(token), "", Client{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Recall(ctx, w.other, id, Actor{Kind: "client", ID: "other"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("another account recalls it: %v", err)
		}
		st, err := w.svc.Recall(ctx, w.acct, id, Actor{Kind: "client", ID: "c1"})
		if err != nil || st.State != "recalled" || st.RecalledAt == nil {
			t.Fatalf("recall: %+v %v", st, err)
		}
		if _, err := w.svc.Open(ctx, token); !errors.Is(err, ErrRecalled) {
			t.Errorf("a recalled link: %v", err)
		}
		if _, err := w.svc.Session(ctx, token, sess.Token()); !errors.Is(err, ErrRecalled) {
			t.Errorf("a session on a recalled message: %v", err)
		}
		if w.count("SELECT count(*) FROM portal_messages WHERE id = $1 AND content_sealed IS NULL", id) != 1 {
			t.Error("a recalled message kept its content")
		}
		if w.count("SELECT count(*) FROM portal_sessions WHERE portal_message_id = $1 AND revoked_at IS NULL", id) != 0 {
			t.Error("a recalled message kept a live session")
		}
		if _, err := w.svc.Recall(ctx, w.acct, id, Actor{Kind: "client", ID: "c1"}); err != nil {
			t.Errorf("recalling twice: %v", err)
		}
		if got := w.count("SELECT count(*) FROM audit_events WHERE action = 'portal.recalled'"); got != 1 {
			t.Errorf("%d recalls audited, want 1", got)
		}
	})
}

func TestTenantsAndMessagesAreIsolated(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		idA, tokenA := w.deposit(Deposit{})
		idB, tokenB := w.deposit(Deposit{AccountID: w.other, Sender: "front@other.example"})
		if _, err := w.svc.Get(ctx, w.other, idA); !errors.Is(err, ErrNotFound) {
			t.Errorf("another account reads the status: %v", err)
		}
		if _, err := w.svc.Get(ctx, w.acct, idB); !errors.Is(err, ErrNotFound) {
			t.Errorf("the first account reads the other's status: %v", err)
		}
		sess, err := w.svc.Verify(ctx, tokenA, w.code(tokenA), "", Client{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Session(ctx, tokenB, sess.Token()); !errors.Is(err, ErrNoSession) {
			t.Errorf("a session of one message opens another: %v", err)
		}
		if n := w.out.last(t, PurposeLink); !strings.Contains(n.Subject, "Other Practice") {
			t.Errorf("the other account's notice names %q", n.Subject)
		}
	})
}

func TestSessionsEndWhenIdleOrOld(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		_, token := w.deposit(Deposit{})
		sess, err := w.svc.Verify(ctx, token, w.code(token), "", Client{})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 { // active every 14 minutes: stays signed in...
			w.clock.advance(14 * time.Minute)
			if _, err := w.svc.Session(ctx, token, sess.Token()); err != nil {
				t.Fatalf("an active session: %v", err)
			}
		}
		w.clock.advance(14 * time.Minute) // ...until the absolute hour
		if _, err := w.svc.Session(ctx, token, sess.Token()); !errors.Is(err, ErrNoSession) {
			t.Errorf("a session past its absolute lifetime: %v", err)
		}
		w.clock.advance(20 * time.Minute)
		idle, err := w.svc.Verify(ctx, token, w.code(token), "", Client{})
		if err != nil {
			t.Fatal(err)
		}
		w.clock.advance(15 * time.Minute)
		if _, err := w.svc.Session(ctx, token, idle.Token()); !errors.Is(err, ErrIdle) {
			t.Errorf("an idle session: %v", err)
		}
		if got := w.count("SELECT count(*) FROM audit_events WHERE action = 'portal.idle_timeout'"); got != 1 {
			t.Errorf("%d idle sign-outs audited", got)
		}
	})
}

func TestEveryRecipientActionIsAuditedAndAnEvent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		msgID := store.NewID()
		_, token := w.deposit(Deposit{MessageID: msgID, RcptIndex: 2, Content: Content{Subject: "Results", Text: "see file",
			Attachments: []Attachment{{Filename: "hiv-test.pdf", Content: []byte("%PDF")}}}})
		c := Client{SourceIP: "198.51.100.9", RequestID: "req-1"}
		sess, err := w.svc.Verify(ctx, token, w.code(token), "", c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Read(ctx, sess, c); err != nil {
			t.Fatal(err)
		}
		a, err := w.svc.Download(ctx, sess, 0, c)
		if err != nil || string(a.Content) != "%PDF" {
			t.Fatalf("download: %v", err)
		}
		if _, err := w.svc.Download(ctx, sess, 1, c); !errors.Is(err, ErrNotFound) {
			t.Errorf("a missing attachment: %v", err)
		}
		if err := w.svc.SendReply(ctx, sess, Reply{Text: "Thanks, see you Tuesday"}, c); err != nil {
			t.Fatal(err)
		}
		if err := w.svc.Logout(ctx, sess, c); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{EventDeposited, EventNotified, EventCodeSent, EventSignedIn, EventViewed, EventDownloaded,
			EventReplied, EventSignedOut} {
			if w.count("SELECT count(*) FROM message_events WHERE account_id = $1 AND message_id = $2 AND rcpt_index = 2 AND type = $3",
				w.acct, msgID, typ) != 1 {
				t.Errorf("no %s event on the message's recipient", typ)
			}
		}
		for _, action := range []string{"portal.deposited", "portal.code_sent", "portal.signed_in", "portal.viewed", "portal.downloaded",
			"portal.replied", "portal.signed_out"} {
			if w.count("SELECT count(*) FROM audit_events WHERE account_id = $1 AND action = $2", w.acct, action) != 1 {
				t.Errorf("%s not audited once", action)
			}
		}
		if w.count("SELECT count(*) FROM audit_events WHERE details LIKE '%hiv%' OR details LIKE '%Tuesday%'") != 0 ||
			w.count("SELECT count(*) FROM message_events WHERE details LIKE '%hiv%' OR details LIKE '%Tuesday%'") != 0 {
			t.Error("content or a file name reached an event")
		}
		r := w.out.last(t, PurposeReply)
		if r.To != "results@clinic.example" || r.ReplyTo != "pat@patient.example" || !strings.Contains(r.Text, "see you Tuesday") {
			t.Errorf("the reply notice: %+v", r)
		}
		var sealed []byte
		if err := s.Reader().QueryRow(ctx, "SELECT body_sealed FROM portal_replies WHERE account_id = $1", w.acct).Scan(&sealed); err != nil ||
			bytes.Contains(sealed, []byte("Tuesday")) {
			t.Errorf("the stored reply: %v", err)
		}
		if _, err := w.svc.Session(ctx, token, sess.Token()); !errors.Is(err, ErrNoSession) {
			t.Errorf("a session after sign-out: %v", err)
		}
	})
}

func TestAPIDepositTiesEventsToTheNoticeMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		dep, err := w.svc.Deposit(ctx, Deposit{AccountID: w.acct, Recipient: "pat@patient.example", Sender: "results@clinic.example",
			Content: Content{Subject: "s", Text: "t"}})
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := w.svc.Get(ctx, w.acct, dep.ID); st.State != "pending" || st.MessageID != "" {
			t.Errorf("before the notice: %+v", st)
		}
		if err := w.svc.sendNotice(ctx, w.acct, dep.ID); err != nil {
			t.Fatal(err)
		}
		st, _ := w.svc.Get(ctx, w.acct, dep.ID)
		if st.State != "notified" || st.MessageID == "" {
			t.Fatalf("after the notice: %+v", st)
		}
		if w.count("SELECT count(*) FROM message_events WHERE message_id = $1 AND type = $2", st.MessageID, EventNotified) != 1 {
			t.Error("the notice's message has no portal_notified event")
		}
	})
}

package bounce_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/bounce"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// fixture is two accounts with one delivered message each, and a bounce
// listener on loopback.
//
//	account A, message A: 0 pat@patient.example delivered, 1 kim@patient.example delivered, 2 lee@patient.example queued
//	account B, message B: 0 pat@patient.example delivered (the same address in another tenant)
type fixture struct {
	t        *testing.T
	db       *store.Store
	signer   *bounce.Signer
	reg      *prometheus.Registry
	addr     string
	accountA string
	accountB string
	msgA     string
	msgB     string
	tls      *tls.Config // the client's, when the listener offers STARTTLS
}

var clock = time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)

func newFixture(t *testing.T, s *store.Store, withTLS bool) *fixture {
	t.Helper()
	f := &fixture{t: t, db: s, signer: newSigner(t, 7), reg: prometheus.NewRegistry()}
	f.accountA, f.msgA = f.seed("A", "pat@patient.example:delivered", "kim@patient.example:delivered", "lee@patient.example:queued")
	f.accountB, f.msgB = f.seed("B", "pat@patient.example:delivered")
	proc, err := bounce.NewProcessor(s, bounce.Options{Registerer: f.reg, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	opts := bounce.ServerOptions{Addr: "127.0.0.1:0", Hostname: "mx.bounces.clinic.example", Timeout: 10 * time.Second}
	if withTLS {
		cert, certPEM, err := smtptest.Certificate("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(certPEM)
		f.tls = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	srv := bounce.NewServer(opts, f.signer, proc)
	if f.addr, err = srv.Listen(); err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return f
}

// seed creates an account and a message with recipients "address:state".
func (f *fixture) seed(name string, rcpts ...string) (string, string) {
	f.t.Helper()
	ctx := context.Background()
	accountID, msgID, now := store.NewID(), store.NewID(), store.Micros(clock.Add(-time.Hour))
	f.exec(ctx, "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)", accountID, name, now)
	f.exec(ctx, `INSERT INTO messages (id, account_id, actor_kind, actor_id, from_addr, from_domain, header_id, kind, tags, metadata,
		options, size, smtputf8, send_at, created_at) VALUES ($1, $2, 'client', 'c1', 'reminders@clinic.example', 'clinic.example',
		'abc@clinic.example', 'transactional', '[]', '{}', '{}', 100, FALSE, $3, $3)`, msgID, accountID, now)
	for i, r := range rcpts {
		addr, state, _ := strings.Cut(r, ":")
		f.exec(ctx, `INSERT INTO message_recipients (message_id, rcpt_index, account_id, address, domain, kind, state, priority,
			next_attempt_at, expires_at, updated_at, smtp_code, smtp_reply) VALUES ($1, $2, $3, $4, 'patient.example', 'to', $5, 1, $6, $6, $6, 250, '250 ok')`,
			msgID, i, accountID, addr, state, now)
	}
	return accountID, msgID
}

func (f *fixture) exec(ctx context.Context, q string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Writer().Exec(ctx, q, args...); err != nil {
		f.t.Fatal(err)
	}
}

// rcpt is a return-path address of a message (index -1: the message
// alone).
func (f *fixture) rcpt(msgID string, index int) string {
	return f.signer.ReturnPath("", msgID, "", index)
}

// send delivers raw to rcpts over SMTP from the null reverse-path, as a
// reporting MTA does (RFC 3464 §2).
func (f *fixture) send(raw []byte, rcpts ...string) error {
	f.t.Helper()
	c, err := smtp.Dial(f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	if f.tls != nil {
		if err := c.StartTLS(f.tls); err != nil {
			f.t.Fatalf("STARTTLS: %v", err)
		}
	}
	if err := c.Mail(""); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func (f *fixture) mustSend(raw []byte, rcpts ...string) {
	f.t.Helper()
	if err := f.send(raw, rcpts...); err != nil {
		f.t.Fatalf("send to %v: %v", rcpts, err)
	}
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type recipientRow struct {
	state string
	code  int
	reply string
}

func (f *fixture) recipient(accountID, msgID string, index int) recipientRow {
	f.t.Helper()
	var r recipientRow
	if err := f.db.Reader().QueryRow(context.Background(), `SELECT state, smtp_code, smtp_reply FROM message_recipients
		WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3`, accountID, msgID, index).Scan(&r.state, &r.code, &r.reply); err != nil {
		f.t.Fatal(err)
	}
	return r
}

// events returns the details of a recipient's events of a type.
func (f *fixture) events(msgID string, index int, typ string) []map[string]string {
	f.t.Helper()
	rows, err := f.db.Reader().Query(context.Background(), "SELECT details FROM message_events WHERE message_id = $1 AND rcpt_index = $2 AND type = $3",
		msgID, index, typ)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// suppressed returns the reason an address is suppressed in an
// account, or "".
func (f *fixture) suppressed(accountID, addr string) string {
	f.t.Helper()
	var reason string
	err := f.db.Reader().QueryRow(context.Background(), "SELECT reason FROM suppressions WHERE account_id = $1 AND address = $2",
		accountID, addr).Scan(&reason)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return reason
}

// count returns the listener's result counter.
func (f *fixture) count(result string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sealpost_bounce_reports_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func replyCodeOf(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestListenerTakesOnlySignedReturnPaths(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s, false)
		valid := f.rcpt(f.msgA, -1)
		local, _, _ := strings.Cut(valid, "@")
		forged := newSigner(t, 8).ReturnPath("", f.msgA, "", -1)
		refused := map[string]string{
			"a valid token at another domain": local + "@clinic.example",
			"a plain address at the domain":   "postmaster@bounces.clinic.example",
			"a token signed with another key": forged,
			"a token with a changed letter":   strings.Replace(valid, "b+", "b+a", 1)[:len(valid)],
		}
		for name, rcpt := range refused {
			err := f.send(sample(t, "postfix-hard.eml"), rcpt)
			if code := replyCodeOf(err); code != 550 || !strings.Contains(err.Error(), "5.1.1") {
				t.Errorf("%s (%s): %v, want 550 5.1.1", name, rcpt, err)
			}
		}
		if got := f.count(bounce.ResultRefused); got != float64(len(refused)) {
			t.Errorf("refused counter %v, want %d", got, len(refused))
		}
		if r := f.recipient(f.accountA, f.msgA, 0); r.state != "delivered" {
			t.Errorf("a refused report changed the recipient: %+v", r)
		}
		// The upper-cased form of a valid address is taken (RFC 5321
		// §2.4: MTAs may fold the case of the local part).
		f.mustSend(sample(t, "autoreply.eml"), strings.ToUpper(valid))
	})
}

func TestLateBounceMovesADeliveredRecipientToBouncedAndSuppressesIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s, true) // over STARTTLS
		f.mustSend(sample(t, "postfix-hard.eml"), f.rcpt(f.msgA, -1))
		r := f.recipient(f.accountA, f.msgA, 0)
		if r.state != "bounced" || r.code != 550 || !strings.Contains(r.reply, "5.1.1") || !strings.Contains(r.reply, "User unknown") {
			t.Errorf("recipient after the DSN: %+v", r)
		}
		if strings.ContainsAny(r.reply, "\r\n\t") {
			t.Errorf("evidence keeps control characters: %q", r.reply)
		}
		ev := f.events(f.msgA, 0, "bounced")
		if len(ev) != 1 || ev[0]["async"] != "true" || ev[0]["status"] != "5.1.1" || ev[0]["hard"] != "true" ||
			ev[0]["reporting_mta"] != "mx.patient.example" || ev[0]["smtp_code"] != "550" {
			t.Errorf("bounced events %v", ev)
		}
		if got := f.suppressed(f.accountA, "pat@patient.example"); got != "hard_bounce" {
			t.Errorf("suppression %q, want hard_bounce", got)
		}
		for i, want := range []string{"bounced", "delivered", "queued"} {
			if got := f.recipient(f.accountA, f.msgA, i).state; got != want {
				t.Errorf("recipient %d is %s, want %s", i, got, want)
			}
		}
		if f.count(bounce.ResultBounced) != 1 {
			t.Errorf("bounced counter %v", f.count(bounce.ResultBounced))
		}

		// Exchange and Gmail shapes say the same of kim (index in the token).
		for _, file := range []string{"exchange-hard.eml", "gmail-hard.eml"} {
			f.exec(context.Background(), "UPDATE message_recipients SET state = 'delivered' WHERE message_id = $1 AND rcpt_index = 1", f.msgA)
			f.exec(context.Background(), "DELETE FROM suppressions WHERE account_id = $1", f.accountA)
			f.mustSend(sample(t, file), f.rcpt(f.msgA, 1))
			if got := f.recipient(f.accountA, f.msgA, 1).state; got != "bounced" {
				t.Errorf("%s: kim is %s, want bounced", file, got)
			}
			if got := f.suppressed(f.accountA, "kim@patient.example"); got != "hard_bounce" {
				t.Errorf("%s: suppression %q", file, got)
			}
		}
	})
}

func TestTheSameReportTwiceChangesNothingTheSecondTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s, false)
		for range 2 {
			f.mustSend(sample(t, "postfix-hard.eml"), f.rcpt(f.msgA, -1))
			f.mustSend(sample(t, "multi-recipient.eml"), f.rcpt(f.msgA, -1))
			f.mustSend(sample(t, "arf-abuse.eml"), f.rcpt(f.msgA, -1))
		}
		for _, c := range []struct {
			index int
			typ   string
		}{{0, "bounced"}, {1, "deferred"}, {0, "complained"}} {
			if got := len(f.events(f.msgA, c.index, c.typ)); got != 1 {
				t.Errorf("recipient %d has %d %s events, want 1", c.index, got, c.typ)
			}
		}
		var n int
		if err := s.Reader().QueryRow(context.Background(), "SELECT count(*) FROM bounce_reports WHERE account_id = $1", f.accountA).Scan(&n); err != nil {
			t.Fatal(err)
		}
		// pat's 5.1.1 and 5.2.2 failures, kim's delay, pat's complaint.
		if n != 4 {
			t.Errorf("%d reports remembered, want 4", n)
		}
	})
}

func TestDelaysAndSoftBouncesAndOtherActions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s, false)
		f.mustSend(sample(t, "multi-recipient.eml"), f.rcpt(f.msgA, -1))
		// pat: failed 5.2.2 (mailbox full): bounced, not suppressed.
		if r := f.recipient(f.accountA, f.msgA, 0); r.state != "bounced" || r.code != 552 {
			t.Errorf("pat: %+v", r)
		}
		if got := f.suppressed(f.accountA, "pat@patient.example"); got != "" {
			t.Errorf("a full mailbox suppressed the address (%s)", got)
		}
		// kim: delayed, matched by Original-Recipient though forwarded:
		// a deferred event, the state unchanged.
		ev := f.events(f.msgA, 1, "deferred")
		if len(ev) != 1 || ev[0]["status"] != "4.4.1" || ev[0]["async"] != "true" || ev[0]["will_retry_until"] == "" {
			t.Errorf("kim's deferred events %v", ev)
		}
		if got := f.recipient(f.accountA, f.msgA, 1).state; got != "delivered" {
			t.Errorf("a delay changed kim's state to %s", got)
		}
		// lee: "delivered" is nothing to act on (and lee is still queued).
		if got := f.recipient(f.accountA, f.msgA, 2).state; got != "queued" {
			t.Errorf("lee is %s", got)
		}
		if f.count(bounce.ResultDelayed) != 1 || f.count(bounce.ResultBounced) != 1 || f.count(bounce.ResultIgnored) != 1 {
			t.Errorf("counters: delayed %v bounced %v ignored %v", f.count(bounce.ResultDelayed), f.count(bounce.ResultBounced),
				f.count(bounce.ResultIgnored))
		}
		// A failure for a recipient never handed over changes nothing.
		f.mustSend(sample(t, "postfix-hard.eml"), f.rcpt(f.msgA, 2))
		if got := f.recipient(f.accountA, f.msgA, 2).state; got != "queued" {
			t.Errorf("a bounce for a queued recipient made it %s", got)
		}
	})
}

func TestATokenTouchesOnlyItsOwnMessage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s, false)
		// pat is a recipient in both tenants; A's token bounces A's pat only.
		f.mustSend(sample(t, "postfix-hard.eml"), f.rcpt(f.msgA, -1))
		if got := f.recipient(f.accountB, f.msgB, 0).state; got != "delivered" {
			t.Errorf("account B's recipient is %s after a bounce for account A", got)
		}
		if got := f.suppressed(f.accountB, "pat@patient.example"); got != "" {
			t.Errorf("account B suppressed pat (%s)", got)
		}
		if len(f.events(f.msgB, 0, "bounced")) != 0 {
			t.Error("account B got a bounced event")
		}
		// With the recipient in the token, the report's addresses do not
		// pick another recipient: kim's token bounces kim even though the
		// DSN names pat.
		f.exec(context.Background(), "UPDATE message_recipients SET state = 'delivered' WHERE message_id = $1", f.msgA)
		f.exec(context.Background(), "DELETE FROM suppressions WHERE account_id = $1", f.accountA)
		f.exec(context.Background(), "DELETE FROM bounce_reports WHERE account_id = $1", f.accountA)
		f.mustSend(sample(t, "postfix-hard.eml"), f.rcpt(f.msgA, 1))
		if a, b := f.recipient(f.accountA, f.msgA, 0).state, f.recipient(f.accountA, f.msgA, 1).state; a != "delivered" || b != "bounced" {
			t.Errorf("pat %s, kim %s; want delivered, bounced", a, b)
		}
		// An address the message was not sent to is ignored; B's own
		// token bounces B's pat (5.2.1 without an SMTP reply: 550 stands in).
		f.mustSend(sample(t, "missing-fields.eml"), f.rcpt(f.msgB, -1))
		if got := f.suppressed(f.accountB, "nobody-we-sent-to@elsewhere.example"); got != "" {
			t.Errorf("an address never sent to was suppressed")
		}
		if r := f.recipient(f.accountB, f.msgB, 0); r.state != "bounced" || r.code != 550 || !strings.Contains(r.reply, "mailbox disabled") {
			t.Errorf("account B's pat after its own DSN: %+v", r)
		}
		if got := f.suppressed(f.accountB, "pat@patient.example"); got != "hard_bounce" {
			t.Errorf("account B's pat suppression %q, want hard_bounce (5.2.1)", got)
		}
	})
}

func TestComplaintsSuppress(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s, false)
		f.mustSend(sample(t, "arf-abuse.eml"), f.rcpt(f.msgA, -1))
		if got := f.suppressed(f.accountA, "pat@patient.example"); got != "complaint" {
			t.Errorf("pat's suppression %q, want complaint", got)
		}
		ev := f.events(f.msgA, 0, bounce.EventComplained)
		if len(ev) != 1 || ev[0]["async"] != "true" || ev[0]["feedback_type"] != "abuse" {
			t.Errorf("complained events %v", ev)
		}
		if got := f.recipient(f.accountA, f.msgA, 0).state; got != "delivered" {
			t.Errorf("a complaint changed the state to %s", got)
		}
		if got := f.suppressed(f.accountA, "kim@patient.example"); got != "" {
			t.Errorf("kim, a co-recipient, was suppressed (%s)", got)
		}
		// A redacted report of a message with several recipients cannot
		// tell who complained: nobody is suppressed; with the recipient
		// in the token it can.
		f.mustSend(sample(t, "arf-redacted.eml"), f.rcpt(f.msgA, -1))
		if got := f.suppressed(f.accountA, "kim@patient.example"); got != "" {
			t.Errorf("an ambiguous complaint suppressed kim (%s)", got)
		}
		f.mustSend(sample(t, "arf-redacted.eml"), f.rcpt(f.msgA, 1))
		if got := f.suppressed(f.accountA, "kim@patient.example"); got != "complaint" {
			t.Errorf("kim's suppression %q, want complaint", got)
		}
		// A single-recipient message needs no Original-Rcpt-To.
		f.mustSend(sample(t, "arf-redacted.eml"), f.rcpt(f.msgB, -1))
		if got := f.suppressed(f.accountB, "pat@patient.example"); got != "complaint" {
			t.Errorf("account B's pat: %q, want complaint", got)
		}
		// Other feedback types are not complaints.
		notSpam := bytes.Replace(sample(t, "arf-abuse.eml"), []byte("Feedback-Type: abuse"), []byte("Feedback-Type: not-spam"), 1)
		f.exec(context.Background(), "DELETE FROM suppressions")
		f.exec(context.Background(), "DELETE FROM bounce_reports")
		f.mustSend(notSpam, f.rcpt(f.msgA, -1))
		if got := f.suppressed(f.accountA, "pat@patient.example"); got != "" {
			t.Errorf("a not-spam report suppressed pat (%s)", got)
		}
		if f.count(bounce.ResultComplaint) != 3 {
			t.Errorf("complaint counter %v, want 3", f.count(bounce.ResultComplaint))
		}
	})
}

func TestMailThatIsNotAReportIsAcceptedAndDropped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s, false)
		for _, raw := range [][]byte{sample(t, "autoreply.eml"), []byte("\x00\x01 not mail at all"),
			[]byte("Content-Type: multipart/report; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n")} {
			if err := f.send(raw, f.rcpt(f.msgA, -1)); err != nil {
				t.Errorf("refused %q: %v", raw[:min(len(raw), 20)], err)
			}
		}
		if got := f.count(bounce.ResultIgnored); got != 3 {
			t.Errorf("ignored counter %v, want 3", got)
		}
		if got := f.recipient(f.accountA, f.msgA, 0).state; got != "delivered" {
			t.Errorf("state %s", got)
		}
		// A report for a message that no longer exists is dropped too.
		f.mustSend(sample(t, "postfix-hard.eml"), f.rcpt(store.NewID(), -1))
	})
}

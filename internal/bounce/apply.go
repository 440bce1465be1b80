package bounce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
)

// Results of a report for one recipient (the metric's result label).
const (
	ResultBounced   = "bounced"
	ResultDelayed   = "delayed"
	ResultComplaint = "complaint"
	// ResultIgnored: nothing to do (not a report, an action that changes
	// nothing, no matching recipient, or a report already applied).
	ResultIgnored = "ignored"
	// ResultRefused: RCPT to an address this server did not hand out.
	ResultRefused = "refused"
)

// EventComplained is the message_events type of a complaint.
const EventComplained = messages.EventComplained

// hardStatuses are the RFC 3463 codes that say the address itself is
// bad, so it is suppressed: 5.1.1 bad mailbox, 5.1.2 bad system, 5.1.3
// bad address syntax, 5.1.6 mailbox moved, 5.1.10 null MX (RFC 7505 §4),
// 5.2.1 mailbox disabled. Everything else of class 5 (mailbox full 5.2.2,
// policy and spam 5.7.x, our own sender 5.1.7/5.1.8, routing 5.4.x)
// bounces the message without suppressing the address.
var hardStatuses = map[string]bool{"5.1.1": true, "5.1.2": true, "5.1.3": true, "5.1.6": true, "5.1.10": true, "5.2.1": true}

// IsHard reports whether status is a hard bounce (see hardStatuses).
func IsHard(status string) bool { return hardStatuses[status] }

// Options configure a Processor.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Processor applies reports to the messages their tokens name.
type Processor struct {
	db      *store.Store
	opts    Options
	results *prometheus.CounterVec
}

// NewProcessor returns a processor over db.
func NewProcessor(db *store.Store, opts Options) (*Processor, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sealpost_bounce_reports_total",
		Help: "Asynchronous reports received at the bounce listener, per recipient, by result (bounced, delayed, complaint, ignored, refused).",
	}, []string{"result"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(results); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			results = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for _, r := range []string{ResultBounced, ResultDelayed, ResultComplaint, ResultIgnored, ResultRefused} {
		results.WithLabelValues(r)
	}
	return &Processor{db: db, opts: opts, results: results}, nil
}

// Count adds one to a result's counter.
func (p *Processor) Count(result string) { p.results.WithLabelValues(result).Inc() }

// Applied is what a report did to one recipient.
type Applied struct {
	Index   int
	Address string
	Result  string
	// Hard is set for a bounce that suppressed the address.
	Hard bool
}

// rcpt is a recipient of the token's message.
type rcpt struct {
	index   int
	address string
}

// Apply applies a report received at the return path that carried tok,
// in one transaction. The token decides the account: only recipients of
// the token's message are touched, whatever addresses the report names.
// A report for a message that is gone, or naming no recipient of it, is
// ignored.
func (p *Processor) Apply(ctx context.Context, tok Token, rep Report) ([]Applied, error) {
	var out []Applied
	err := p.db.InTx(ctx, func(tx store.Tx) error {
		out = nil
		var accountID string
		err := tx.QueryRow(ctx, "SELECT account_id FROM messages WHERE id = $1", tok.MessageID).Scan(&accountID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bounce: find message: %w", err)
		}
		rcpts, err := recipients(ctx, tx, accountID, tok.MessageID)
		if err != nil {
			return err
		}
		a := applier{tx: tx, accountID: accountID, messageID: tok.MessageID, now: p.opts.Now(), rep: rep}
		switch rep.Kind {
		case KindDelivery:
			for _, rs := range rep.Recipients {
				r, ok := matchDSN(rs, tok, rcpts)
				if !ok {
					out = append(out, Applied{Index: noIndex, Address: "", Result: ResultIgnored})
					continue
				}
				res, err := a.delivery(ctx, r, rs)
				if err != nil {
					return err
				}
				out = append(out, res)
			}
		case KindFeedback:
			for _, r := range matchComplaint(rep, tok, rcpts) {
				res, err := a.complaint(ctx, r)
				if err != nil {
					return err
				}
				out = append(out, res)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		p.Count(ResultIgnored)
	}
	for _, a := range out {
		p.Count(a.Result)
	}
	return out, nil
}

func recipients(ctx context.Context, tx store.Tx, accountID, messageID string) ([]rcpt, error) {
	rows, err := tx.Query(ctx, "SELECT rcpt_index, address FROM message_recipients WHERE account_id = $1 AND message_id = $2 ORDER BY rcpt_index",
		accountID, messageID)
	if err != nil {
		return nil, fmt.Errorf("bounce: recipients: %w", err)
	}
	defer rows.Close()
	var out []rcpt
	for rows.Next() {
		var r rcpt
		if err := rows.Scan(&r.index, &r.address); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// matchDSN finds the recipient a per-recipient group is about: the one
// the token names when the transaction carried one recipient (whatever
// address the report gives, as forwarding may have rewritten it), else
// the recipient whose address is the Original-Recipient (our RCPT TO,
// RFC 3464 §2.3.1), else the Final-Recipient.
func matchDSN(rs RecipientStatus, tok Token, rcpts []rcpt) (rcpt, bool) {
	if tok.Index >= 0 {
		return byIndex(rcpts, tok.Index)
	}
	for _, addr := range []string{rs.OriginalRecipient, xtextDecode(rs.OriginalRecipient), rs.FinalRecipient} {
		if r, ok := byAddress(rcpts, addr); ok {
			return r, true
		}
	}
	return rcpt{}, false
}

// matchComplaint finds the complainant of a feedback report: the
// recipient the token names, else those named by Original-Rcpt-To (RFC
// 5965 §3.2), else the message's only recipient. Feedback loops often
// redact the complainant, in the returned header too, so its To and Cc
// are not used: they name co-recipients as well. A report that leaves
// the complainant ambiguous suppresses nobody.
func matchComplaint(rep Report, tok Token, rcpts []rcpt) []rcpt {
	if tok.Index >= 0 {
		if r, ok := byIndex(rcpts, tok.Index); ok {
			return []rcpt{r}
		}
		return nil
	}
	var out []rcpt
	for _, a := range rep.Feedback.OriginalRcptTo {
		if r, ok := byAddress(rcpts, a); ok {
			out = append(out, r)
		}
	}
	if len(out) > 0 || len(rep.Feedback.OriginalRcptTo) > 0 {
		return out
	}
	if len(rcpts) == 1 {
		return rcpts
	}
	return nil
}

func byIndex(rcpts []rcpt, i int) (rcpt, bool) {
	for _, r := range rcpts {
		if r.index == i {
			return r, true
		}
	}
	return rcpt{}, false
}

func byAddress(rcpts []rcpt, addr string) (rcpt, bool) {
	if addr == "" {
		return rcpt{}, false
	}
	for _, r := range rcpts {
		if strings.EqualFold(r.address, addr) {
			return r, true
		}
	}
	return rcpt{}, false
}

// xtextDecode undoes RFC 3461 §4 xtext ("+2B" for "+"), which an
// Original-Recipient copied from our ORCPT may carry.
func xtextDecode(s string) string {
	if !strings.Contains(s, "+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// applier applies one report's groups inside its transaction.
type applier struct {
	tx        store.Tx
	accountID string
	messageID string
	now       time.Time
	rep       Report
}

// disposition is what a group asks for: RFC 3464 §2.3.3 action first;
// without one, the status class (RFC 3463 §3.1: 5 permanent, 4
// persistent transient).
func disposition(rs RecipientStatus) string {
	switch rs.Action {
	case "failed":
		return ResultBounced
	case "delayed":
		return ResultDelayed
	case "delivered", "relayed", "expanded":
		return ResultIgnored
	}
	switch {
	case strings.HasPrefix(rs.Status, "5."):
		return ResultBounced
	case strings.HasPrefix(rs.Status, "4."):
		return ResultDelayed
	}
	return ResultIgnored
}

func (a applier) delivery(ctx context.Context, r rcpt, rs RecipientStatus) (Applied, error) {
	res := Applied{Index: r.index, Address: r.address, Result: ResultIgnored}
	d := disposition(rs)
	if d == ResultIgnored {
		return res, nil
	}
	fresh, err := a.remember(ctx, r.index, d, rs.Action, rs.Status, rs.Diagnostic, rs.FinalRecipient, rs.OriginalRecipient,
		rs.LastAttempt, rs.WillRetryUntil, a.rep.ArrivalDate, a.rep.ReportingMTA)
	if err != nil || !fresh {
		return res, err
	}
	details := map[string]string{"async": "true", "status": rs.Status, "reporting_mta": clean(a.rep.ReportingMTA),
		"remote_mta": clean(rs.RemoteMTA)}
	if rs.Diagnostic != "" {
		details["diagnostic"] = clean(rs.Diagnostic)
	}
	code := 0
	if rs.DiagnosticType == "smtp" || rs.DiagnosticType == "" {
		code = replyCode(rs.Diagnostic)
	}
	if code == 0 && d == ResultBounced && strings.HasPrefix(rs.Status, "5.") {
		// No SMTP reply to quote (an X-Unix or X-Postfix diagnostic, or
		// none): 550 stands for the permanent failure, so reports count
		// it with the other permanent refusals.
		code = 550
	}
	details["smtp_code"] = strconv.Itoa(code)
	if d == ResultDelayed {
		// A delay changes no state: the remote still holds the message.
		if rs.WillRetryUntil != "" {
			details["will_retry_until"] = clean(rs.WillRetryUntil)
		}
		res.Result = ResultDelayed
		return res, a.event(ctx, r.index, messages.StateDeferred, details)
	}
	// A permanent failure reported after the remote accepted the message
	// (RFC 5321 §6.1: it then owns the notification): delivered becomes
	// bounced. Recipients that were never handed over are left alone.
	n, err := a.tx.Exec(ctx, `UPDATE message_recipients SET state = $1, smtp_code = $2, smtp_reply = $3, updated_at = $4
		WHERE account_id = $5 AND message_id = $6 AND rcpt_index = $7 AND state IN ('delivered', 'deferred')`,
		messages.StateBounced, code, clean(evidence(rs, a.rep.ReportingMTA)), store.Micros(a.now), a.accountID, a.messageID, r.index)
	if err != nil {
		return res, fmt.Errorf("bounce: update recipient: %w", err)
	}
	if n == 0 {
		return res, nil
	}
	res.Result, res.Hard = ResultBounced, IsHard(rs.Status)
	details["hard"] = strconv.FormatBool(res.Hard)
	if err := a.event(ctx, r.index, messages.StateBounced, details); err != nil {
		return res, err
	}
	if res.Hard {
		return res, messages.Suppress(ctx, a.tx, a.accountID, r.address, messages.ReasonHardBounce, a.now)
	}
	return res, nil
}

func (a applier) complaint(ctx context.Context, r rcpt) (Applied, error) {
	res := Applied{Index: r.index, Address: r.address, Result: ResultIgnored}
	// RFC 5965 §3.1: abuse is the recipient calling the mail unwanted;
	// fraud, virus, auth-failure (RFC 6591) and not-spam say nothing
	// about the recipient's wish to receive mail.
	if a.rep.Feedback.Type != "abuse" {
		return res, nil
	}
	// One complaint per recipient and message, however often reported.
	fresh, err := a.remember(ctx, r.index, ResultComplaint)
	if err != nil || !fresh {
		return res, err
	}
	res.Result = ResultComplaint
	details := map[string]string{"async": "true", "feedback_type": a.rep.Feedback.Type, "user_agent": clean(a.rep.Feedback.UserAgent),
		"reporting_mta": clean(a.rep.Feedback.ReportingMTA)}
	if err := a.event(ctx, r.index, EventComplained, details); err != nil {
		return res, err
	}
	return res, messages.Suppress(ctx, a.tx, a.accountID, r.address, messages.ReasonComplaint, a.now)
}

// remember records that a report was applied to a recipient and reports
// whether it is new (false: a duplicate, to be ignored). parts identify
// the report's content.
func (a applier) remember(ctx context.Context, index int, kind string, parts ...string) (bool, error) {
	h := sha256.New()
	for _, p := range append([]string{kind}, parts...) {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	n, err := a.tx.Exec(ctx, `INSERT INTO bounce_reports (account_id, message_id, rcpt_index, digest, kind, received_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id, rcpt_index, digest) DO NOTHING`,
		a.accountID, a.messageID, index, hex.EncodeToString(h.Sum(nil)), kind, store.Micros(a.now))
	if err != nil {
		return false, fmt.Errorf("bounce: remember report: %w", err)
	}
	return n == 1, nil
}

func (a applier) event(ctx context.Context, index int, typ string, details map[string]string) error {
	b, _ := json.Marshal(details)
	_, err := a.tx.Exec(ctx, `INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, store.NewID(), a.accountID, a.messageID, index, typ, store.Micros(a.now), string(b))
	if err != nil {
		return fmt.Errorf("bounce: record event: %w", err)
	}
	return nil
}

// evidence is the smtp_reply of an asynchronous bounce.
func evidence(rs RecipientStatus, reportingMTA string) string {
	s := "async bounce " + rs.Status
	if reportingMTA != "" {
		s += " from " + reportingMTA
	}
	if rs.Diagnostic != "" {
		s += ": " + rs.Diagnostic
	}
	return s
}

// clean keeps report text printable and short for storage: a remote's
// text is untrusted, so control characters go and it is cut at 500
// bytes on a character boundary.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= 500 {
		return s
	}
	cut := 500
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

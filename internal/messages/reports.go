package messages

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/store"
)

// Reports count messages by the time they were accepted (a cohort): a
// bucket holds the messages created in it and everything that has
// happened to them since, so its delivery, bounce and open rates never
// exceed 100 % and a bucket's numbers keep growing while late events
// (opens, retries that succeed) arrive. Every query is set-based, buckets
// by integer division of the microsecond timestamps (no dialect's date
// functions) and is scoped by account.

// Report granularities.
const (
	GroupDay  = "day"
	GroupHour = "hour"
	GroupNone = "none"
)

// MaxReportRange is the longest range one report or export covers.
const MaxReportRange = 93 * 24 * time.Hour

// Engagement event types, written by tracking and feedback handling.
const (
	EventOpened       = "opened"
	EventClicked      = "clicked"
	EventUnsubscribed = "unsubscribed"
	EventComplained   = "complained"
)

// ErrBadRange: a report's range is empty, reversed or longer than
// MaxReportRange, or its granularity is unknown.
var ErrBadRange = errors.New("messages: the report range must have from before to, at most 93 days apart")

// ReportQuery selects what a report covers: messages accepted in
// [From, To), optionally only those carrying Tag or sent from Domain.
type ReportQuery struct {
	From, To time.Time
	GroupBy  string // day (default), hour or none
	Tag      string
	Domain   string // the sending domain
	Limit    int    // buckets per page: 1 to 1000, default 100
	Cursor   string
}

// Engagement counts an engagement event: distinct recipients and events.
type Engagement struct {
	Unique int64 `json:"unique"`
	Total  int64 `json:"total"`
}

// Counts are a report's numbers. Recipient states are current states;
// Deferred counts recipients deferred at least once, whatever came next.
type Counts struct {
	Accepted     int64      `json:"accepted"`     // messages
	Recipients   int64      `json:"recipients"`   // every recipient of those messages
	Sent         int64      `json:"sent"`         // recipients with at least one delivery attempt
	Delivered    int64      `json:"delivered"`    // the receiving server accepted the message
	Deferred     int64      `json:"deferred"`     // deferred at least once
	Bounced      int64      `json:"bounced"`      // hard + soft
	BouncedHard  int64      `json:"bounced_hard"` // refused with a permanent (5xx) reply
	BouncedSoft  int64      `json:"bounced_soft"` // given up after transient failures
	Suppressed   int64      `json:"suppressed"`
	Failed       int64      `json:"failed"`
	Cancelled    int64      `json:"cancelled"`
	Pending      int64      `json:"pending"` // scheduled, queued or deferred now
	Opened       Engagement `json:"opened"`
	Clicked      Engagement `json:"clicked"`
	Unsubscribed Engagement `json:"unsubscribed"`
	Complained   Engagement `json:"complained"`
}

// Rates are ratios from 0 to 1 (0 when the denominator is 0): delivery
// and bounce rates over sent recipients, open and click rates (distinct
// recipients) over delivered ones.
type Rates struct {
	Delivery float64 `json:"delivery"`
	Bounce   float64 `json:"bounce"`
	Open     float64 `json:"open"`
	Click    float64 `json:"click"`
}

// Bucket is the report of one time span [Start, End).
type Bucket struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Counts Counts    `json:"counts"`
	Rates  Rates     `json:"rates"`
}

// Summary is one page of a report's buckets (every bucket of the range,
// empty ones included, oldest first) and the totals of the whole range.
type Summary struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	GroupBy    string    `json:"group_by"`
	Totals     Bucket    `json:"totals"`
	Buckets    []Bucket  `json:"data"`
	NextCursor *string   `json:"next_cursor"`
}

// ValidRange checks a report's range.
func ValidRange(from, to time.Time) error {
	if from.IsZero() || to.IsZero() || !from.Before(to) || to.Sub(from) > MaxReportRange {
		return ErrBadRange
	}
	return nil
}

func bucketWidth(groupBy string, from, to time.Time) (int64, error) {
	switch groupBy {
	case GroupDay, "":
		return int64(24 * time.Hour / time.Microsecond), nil
	case GroupHour:
		return int64(time.Hour / time.Microsecond), nil
	case GroupNone:
		return store.Micros(to) - store.Micros(from), nil
	}
	return 0, ErrBadRange
}

// Summarize returns a page of the account's report.
func (s *Service) Summarize(ctx context.Context, accountID string, q ReportQuery) (Summary, error) {
	if err := ValidRange(q.From, q.To); err != nil {
		return Summary{}, err
	}
	if q.GroupBy == "" {
		q.GroupBy = GroupDay
	}
	width, err := bucketWidth(q.GroupBy, q.From, q.To)
	if err != nil {
		return Summary{}, err
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	from, to := store.Micros(q.From), store.Micros(q.To)
	n := (to - from + width - 1) / width // buckets in the range
	first := int64(0)
	if q.Cursor != "" {
		start, err := decodeBucketCursor(q.Cursor)
		if err != nil || start < from || start >= to || (start-from)%width != 0 {
			return Summary{}, ErrBadCursor
		}
		first = (start - from) / width
	}
	last := min(first+int64(q.Limit), n) // exclusive
	f, err := reportFilter(q, 6)
	if err != nil {
		return Summary{}, err
	}
	// Only the page's span is read: the buckets past it are not counted.
	pageFrom, pageTo := from+first*width, min(from+last*width, to)
	counts, err := s.bucketCounts(ctx, accountID, pageFrom, pageTo, from, width, f)
	if err != nil {
		return Summary{}, err
	}
	out := Summary{From: q.From.UTC(), To: q.To.UTC(), GroupBy: q.GroupBy, Buckets: make([]Bucket, 0, last-first)}
	var total Counts
	for i := first; i < last; i++ {
		start, end := from+i*width, min(from+(i+1)*width, to)
		c := counts[i]
		out.Buckets = append(out.Buckets, Bucket{Start: store.FromMicros(start), End: store.FromMicros(end), Counts: c, Rates: c.rates()})
		total = total.plus(c)
	}
	if first != 0 || last != n {
		// The page is part of the range: count the whole range once more.
		all, err := s.bucketCounts(ctx, accountID, from, to, from, to-from, f)
		if err != nil {
			return Summary{}, err
		}
		total = all[0]
	}
	out.Totals = Bucket{Start: out.From, End: out.To, Counts: total, Rates: total.rates()}
	if last < n {
		c := encodeBucketCursor(from + last*width)
		out.NextCursor = &c
	}
	return out, nil
}

// sqlFilter is the optional part of a report's WHERE clause on messages m,
// with its arguments, numbered from the placeholder after the fixed ones.
type sqlFilter struct {
	where string
	args  []any
}

func reportFilter(q ReportQuery, next int) (sqlFilter, error) {
	var f sqlFilter
	if q.Tag != "" {
		b, _ := json.Marshal(q.Tag)
		f.where += fmt.Sprintf(` AND m.tags LIKE $%d ESCAPE '\'`, next+len(f.args))
		f.args = append(f.args, "%"+likeEscape(string(b))+"%")
	}
	if q.Domain != "" {
		d, err := domains.Normalize(q.Domain)
		if err != nil {
			return sqlFilter{}, err
		}
		f.where += fmt.Sprintf(" AND m.from_domain = $%d", next+len(f.args))
		f.args = append(f.args, d)
	}
	return f, nil
}

// recipientCountsSQL counts recipients per bucket ($1 account, $2 and $3
// the span, $4 the range's start, $5 the bucket width).
const recipientCountsSQL = `SELECT (m.created_at - $4) / $5 AS bucket,
	COUNT(DISTINCT m.id),
	COUNT(*),
	SUM(CASE WHEN r.attempts > 0 THEN 1 ELSE 0 END),
	SUM(CASE WHEN r.state = 'delivered' THEN 1 ELSE 0 END),
	SUM(CASE WHEN EXISTS (SELECT 1 FROM message_events e WHERE e.account_id = $1 AND e.message_id = r.message_id
		AND e.rcpt_index = r.rcpt_index AND e.type = 'deferred') THEN 1 ELSE 0 END),
	SUM(CASE WHEN r.state = 'bounced' AND r.smtp_code >= 500 THEN 1 ELSE 0 END),
	SUM(CASE WHEN r.state = 'bounced' AND r.smtp_code < 500 THEN 1 ELSE 0 END),
	SUM(CASE WHEN r.state = 'suppressed' THEN 1 ELSE 0 END),
	SUM(CASE WHEN r.state = 'failed' THEN 1 ELSE 0 END),
	SUM(CASE WHEN r.state = 'cancelled' THEN 1 ELSE 0 END),
	SUM(CASE WHEN r.state IN ('queued', 'deferred') THEN 1 ELSE 0 END)
FROM messages m JOIN message_recipients r ON r.message_id = m.id AND r.account_id = m.account_id
WHERE m.account_id = $1 AND m.created_at >= $2 AND m.created_at < $3`

// engagementCountsSQL counts engagement events per bucket and type, and
// the distinct recipients they came from (same parameters).
const engagementCountsSQL = `SELECT bucket, type, COUNT(*), SUM(n) FROM (
	SELECT (m.created_at - $4) / $5 AS bucket, e.type AS type, e.message_id, e.rcpt_index, COUNT(*) AS n
	FROM messages m JOIN message_events e ON e.message_id = m.id
	WHERE m.account_id = $1 AND e.account_id = $1 AND m.created_at >= $2 AND m.created_at < $3
		AND e.type IN ('opened', 'clicked', 'unsubscribed', 'complained')%s
	GROUP BY (m.created_at - $4) / $5, e.type, e.message_id, e.rcpt_index
) per GROUP BY bucket, type`

// bucketCounts counts the messages created in [spanFrom, spanTo), keyed by
// bucket index from rangeFrom in buckets of width.
func (s *Service) bucketCounts(ctx context.Context, accountID string, spanFrom, spanTo, rangeFrom, width int64, f sqlFilter) (map[int64]Counts, error) {
	args := append([]any{accountID, spanFrom, spanTo, rangeFrom, width}, f.args...)
	out := map[int64]Counts{}
	db := s.db.Reader()
	rows, err := db.Query(ctx, recipientCountsSQL+f.where+" GROUP BY (m.created_at - $4) / $5", args...)
	if err != nil {
		return nil, fmt.Errorf("report recipients: %w", err)
	}
	for rows.Next() {
		var b int64
		var c Counts
		if err := rows.Scan(&b, &c.Accepted, &c.Recipients, &c.Sent, &c.Delivered, &c.Deferred, &c.BouncedHard, &c.BouncedSoft,
			&c.Suppressed, &c.Failed, &c.Cancelled, &c.Pending); err != nil {
			rows.Close()
			return nil, fmt.Errorf("report recipients: %w", err)
		}
		c.Bounced = c.BouncedHard + c.BouncedSoft
		out[b] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report recipients: %w", err)
	}
	rows, err = db.Query(ctx, fmt.Sprintf(engagementCountsSQL, f.where), args...)
	if err != nil {
		return nil, fmt.Errorf("report engagement: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		var typ string
		var e Engagement
		if err := rows.Scan(&b, &typ, &e.Unique, &e.Total); err != nil {
			return nil, fmt.Errorf("report engagement: %w", err)
		}
		c := out[b]
		switch typ {
		case EventOpened:
			c.Opened = e
		case EventClicked:
			c.Clicked = e
		case EventUnsubscribed:
			c.Unsubscribed = e
		case EventComplained:
			c.Complained = e
		}
		out[b] = c
	}
	return out, rows.Err()
}

func (c Counts) plus(o Counts) Counts {
	add := func(a, b Engagement) Engagement { return Engagement{a.Unique + b.Unique, a.Total + b.Total} }
	return Counts{
		Accepted: c.Accepted + o.Accepted, Recipients: c.Recipients + o.Recipients, Sent: c.Sent + o.Sent,
		Delivered: c.Delivered + o.Delivered, Deferred: c.Deferred + o.Deferred, Bounced: c.Bounced + o.Bounced,
		BouncedHard: c.BouncedHard + o.BouncedHard, BouncedSoft: c.BouncedSoft + o.BouncedSoft,
		Suppressed: c.Suppressed + o.Suppressed, Failed: c.Failed + o.Failed, Cancelled: c.Cancelled + o.Cancelled,
		Pending: c.Pending + o.Pending, Opened: add(c.Opened, o.Opened), Clicked: add(c.Clicked, o.Clicked),
		Unsubscribed: add(c.Unsubscribed, o.Unsubscribed), Complained: add(c.Complained, o.Complained),
	}
}

func (c Counts) rates() Rates {
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return math.Round(float64(a)/float64(b)*10000) / 10000
	}
	return Rates{Delivery: ratio(c.Delivered, c.Sent), Bounce: ratio(c.Bounced, c.Sent),
		Open: ratio(c.Opened.Unique, c.Delivered), Click: ratio(c.Clicked.Unique, c.Delivered)}
}

func encodeBucketCursor(start int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("b/" + strconv.FormatInt(start, 10)))
}

func decodeBucketCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, ErrBadCursor
	}
	v, ok := strings.CutPrefix(string(b), "b/")
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil {
		return 0, ErrBadCursor
	}
	return n, nil
}

// RecipientRow is one recipient of a message, as the recipient report and
// its CSV export list them.
type RecipientRow struct {
	MessageID   string     `json:"message_id"` // the message's id (not its Message-ID header)
	CreatedAt   time.Time  `json:"created_at"`
	From        string     `json:"from"`
	Recipient   string     `json:"recipient"`
	Kind        string     `json:"kind"` // to, cc or bcc
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	DeliveredAt *time.Time `json:"delivered_at"`
	RemoteHost  string     `json:"remote_host"`
	TLSVersion  string     `json:"tls_version"`
	SMTPCode    int        `json:"smtp_code"`
	Tags        []string   `json:"tags"`
}

// RowPage is one page of recipient rows, oldest message first.
type RowPage struct {
	Rows       []RecipientRow
	NextCursor string
}

// MaxRowPage is the most rows one page holds.
const MaxRowPage = 1000

// recipientRowsSQL lists recipients of messages created in [$2, $3) after
// the keyset position ($4 created, $5 id, $6 index), oldest first.
const recipientRowsSQL = `SELECT m.id, m.created_at, m.from_addr, m.tags, r.rcpt_index, r.address, r.kind, r.state, r.attempts,
	r.next_attempt_at, COALESCE(r.delivered_at, 0), r.remote_host, r.tls_version, r.smtp_code
FROM messages m JOIN message_recipients r ON r.message_id = m.id AND r.account_id = m.account_id
WHERE m.account_id = $1 AND m.created_at >= $2 AND m.created_at < $3
	AND (m.created_at > $4 OR (m.created_at = $4 AND (m.id > $5 OR (m.id = $5 AND r.rcpt_index > $6))))`

// RecipientRows returns a page of the recipients of the account's
// messages accepted in [q.From, q.To) (q.GroupBy is ignored; q.Limit is 1
// to MaxRowPage, default 100). Pages follow a keyset, so a range of any
// size is read a page at a time and no row is skipped or repeated.
func (s *Service) RecipientRows(ctx context.Context, accountID string, q ReportQuery) (RowPage, error) {
	if err := ValidRange(q.From, q.To); err != nil {
		return RowPage{}, err
	}
	if q.Limit <= 0 || q.Limit > MaxRowPage {
		q.Limit = 100
	}
	from, to := store.Micros(q.From), store.Micros(q.To)
	afterCreated, afterID, afterIndex := from-1, "", -1
	if q.Cursor != "" {
		var err error
		if afterCreated, afterID, afterIndex, err = decodeRowCursor(q.Cursor); err != nil {
			return RowPage{}, err
		}
		// Start the index range at the cursor.
		from = max(from, afterCreated)
	}
	f, err := reportFilter(q, 7)
	if err != nil {
		return RowPage{}, err
	}
	args := append([]any{accountID, from, to, afterCreated, afterID, afterIndex}, f.args...)
	rows, err := s.db.Reader().Query(ctx, recipientRowsSQL+f.where+" ORDER BY m.created_at, m.id, r.rcpt_index LIMIT "+
		strconv.Itoa(q.Limit+1), args...)
	if err != nil {
		return RowPage{}, fmt.Errorf("recipient rows: %w", err)
	}
	defer rows.Close()
	now := store.Micros(s.opts.Now())
	var page RowPage
	var lastIndex int
	for rows.Next() {
		var r RecipientRow
		var created, next, delivered int64
		var tags string
		var index int
		if err := rows.Scan(&r.MessageID, &created, &r.From, &tags, &index, &r.Recipient, &r.Kind, &r.State, &r.Attempts,
			&next, &delivered, &r.RemoteHost, &r.TLSVersion, &r.SMTPCode); err != nil {
			return RowPage{}, fmt.Errorf("recipient rows: %w", err)
		}
		if len(page.Rows) == q.Limit {
			last := page.Rows[len(page.Rows)-1]
			page.NextCursor = encodeRowCursor(store.Micros(last.CreatedAt), last.MessageID, lastIndex)
			break
		}
		r.CreatedAt = store.FromMicros(created)
		if r.State == StateQueued && next > now {
			r.State = StateScheduled
		}
		if delivered != 0 {
			t := store.FromMicros(delivered)
			r.DeliveredAt = &t
		}
		_ = json.Unmarshal([]byte(tags), &r.Tags)
		r.Tags = nonNil(r.Tags)
		page.Rows = append(page.Rows, r)
		lastIndex = index
	}
	return page, rows.Err()
}

func encodeRowCursor(created int64, id string, index int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("r/" + strconv.FormatInt(created, 10) + "/" + strconv.Itoa(index) + "/" + id))
}

func decodeRowCursor(c string) (int64, string, int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", 0, ErrBadCursor
	}
	parts := strings.SplitN(string(b), "/", 4)
	if len(parts) != 4 || parts[0] != "r" || parts[3] == "" {
		return 0, "", 0, ErrBadCursor
	}
	created, err1 := strconv.ParseInt(parts[1], 10, 64)
	index, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil {
		return 0, "", 0, ErrBadCursor
	}
	return created, parts[3], index, nil
}

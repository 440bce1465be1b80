package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
)

// Status is a quarantine entry's review state.
type Status string

// Review states. pending moves once, to released or rejected, and never
// back.
const (
	StatusPending  Status = "pending"
	StatusReleased Status = "released"
	StatusRejected Status = "rejected"
)

// Errors callers branch on.
var (
	// ErrReviewed: the entry was already released or rejected.
	ErrReviewed = errors.New("quarantine: already reviewed")
	// ErrBadCursor: a List cursor that does not decode.
	ErrBadCursor = errors.New("quarantine: bad cursor")
	// ErrHeld: the message is already in quarantine.
	ErrHeld = errors.New("quarantine: message already held")
)

// Entry is one quarantined message's review record.
type Entry struct {
	MessageID string   `json:"message_id"`
	RuleID    string   `json:"rule_id"`
	Reasons   []string `json:"reasons"`
	Status    Status   `json:"status"`
	// ReviewerKind and ReviewerID name who released or rejected it;
	// empty while pending.
	ReviewerKind string     `json:"reviewer_kind"`
	ReviewerID   string     `json:"reviewer_id"`
	CreatedAt    time.Time  `json:"created_at"`
	ReviewedAt   *time.Time `json:"reviewed_at"`
}

// Releaser is the send path's side of a review: Release resumes the
// message's delivery, Reject drops it. Both run inside the transaction
// that records the review, so the review and its effect commit together
// (and a hook needs no transaction of its own, which on SQLite's single
// writer would wait on this one). An error rolls the review back.
type Releaser interface {
	Release(ctx context.Context, tx store.Tx, accountID, messageID string) error
	Reject(ctx context.Context, tx store.Tx, accountID, messageID string) error
}

// QuarantineOptions tunes a QuarantineStore. The zero value is usable.
type QuarantineOptions struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Hook acts on reviews; nil records and audits them only.
	Hook Releaser
}

// QuarantineStore keeps the review state of quarantined messages.
type QuarantineStore struct {
	db    *store.Store
	audit *audit.Log
	now   func() time.Time
	hook  Releaser
}

// NewQuarantine returns a QuarantineStore over db; reviews are audited on
// log (nil audits nothing).
func NewQuarantine(db *store.Store, log *audit.Log, opts QuarantineOptions) *QuarantineStore {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &QuarantineStore{db: db, audit: log, now: opts.Now, hook: opts.Hook}
}

// Hold records messageID as quarantined by decision d, in the caller's
// transaction (the send path's, next to the message row). It returns
// ErrHeld when the message is already held.
func (q *QuarantineStore) Hold(ctx context.Context, tx store.Querier, accountID, messageID string, d Decision) (Entry, error) {
	now := q.now().UTC().Truncate(time.Microsecond)
	reasons := d.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	js, err := json.Marshal(reasons)
	if err != nil {
		return Entry{}, fmt.Errorf("encode quarantine reasons: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO dlp_quarantine (account_id, message_id, rule_id, reasons, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, accountID, messageID, d.RuleID, string(js), string(StatusPending), store.Micros(now))
	if errors.Is(err, store.ErrConflict) {
		return Entry{}, ErrHeld
	}
	if err != nil {
		return Entry{}, fmt.Errorf("hold message in quarantine: %w", err)
	}
	return Entry{MessageID: messageID, RuleID: d.RuleID, Reasons: reasons, Status: StatusPending, CreatedAt: now}, nil
}

// ListQuery filters List. Zero values mean no filter and the default page.
type ListQuery struct {
	Status Status
	Cursor string
	// Limit is 1 to 500; 0 means 100.
	Limit int
}

// Page is one page of entries, oldest first, and the next page's cursor
// ("" on the last page).
type Page struct {
	Entries    []Entry
	NextCursor string
}

const entryColumns = `message_id, rule_id, reasons, status, reviewer_kind, reviewer_id, created_at, COALESCE(reviewed_at, 0)`

// List returns the account's entries, oldest first.
func (q *QuarantineStore) List(ctx context.Context, accountID string, f ListQuery) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	where, args := "account_id = $1", []any{accountID}
	if f.Status != "" {
		args = append(args, string(f.Status))
		where += " AND status = $" + strconv.Itoa(len(args))
	}
	if f.Cursor != "" {
		created, id, ok := store.DecodeCursor(f.Cursor)
		if !ok {
			return Page{}, ErrBadCursor
		}
		args = append(args, created, id)
		n := len(args)
		where += fmt.Sprintf(" AND (created_at > $%d OR (created_at = $%d AND message_id > $%d))", n-1, n-1, n)
	}
	rows, err := q.db.Reader().Query(ctx, `SELECT `+entryColumns+` FROM dlp_quarantine WHERE `+where+
		` ORDER BY created_at, message_id LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return Page{}, fmt.Errorf("list quarantine: %w", err)
	}
	defer rows.Close()
	page := Page{Entries: []Entry{}}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return Page{}, err
		}
		page.Entries = append(page.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("list quarantine: %w", err)
	}
	if len(page.Entries) > limit {
		page.Entries = page.Entries[:limit]
		last := page.Entries[limit-1]
		page.NextCursor = store.EncodeCursor(last.CreatedAt, last.MessageID)
	}
	return page, nil
}

// Get returns one entry (store.ErrNotFound when the account holds none).
func (q *QuarantineStore) Get(ctx context.Context, accountID, messageID string) (Entry, error) {
	return getEntry(ctx, q.db.Reader(), accountID, messageID)
}

func getEntry(ctx context.Context, db store.Querier, accountID, messageID string) (Entry, error) {
	e, err := scanEntry(db.QueryRow(ctx, `SELECT `+entryColumns+` FROM dlp_quarantine WHERE account_id = $1 AND message_id = $2`,
		accountID, messageID))
	if errors.Is(err, store.ErrNotFound) {
		return Entry{}, store.ErrNotFound
	}
	return e, err
}

// Release marks the message released and hands it back to the send path
// (Hook.Release), audited as quarantine.released. It returns ErrReviewed
// when the entry was already reviewed, store.ErrNotFound when the account
// has no such entry.
func (q *QuarantineStore) Release(ctx context.Context, actor account.Actor, messageID string) (Entry, error) {
	return q.review(ctx, actor, messageID, StatusReleased)
}

// Reject marks the message rejected and has the send path drop it
// (Hook.Reject), audited as quarantine.rejected. Errors as Release.
func (q *QuarantineStore) Reject(ctx context.Context, actor account.Actor, messageID string) (Entry, error) {
	return q.review(ctx, actor, messageID, StatusRejected)
}

func (q *QuarantineStore) review(ctx context.Context, actor account.Actor, messageID string, to Status) (Entry, error) {
	accountID := actor.Principal.AccountID
	now := q.now().UTC().Truncate(time.Microsecond)
	var out Entry
	err := q.db.InTx(ctx, func(tx store.Tx) error {
		moved, err := ReviewTx(ctx, tx, accountID, messageID, to, string(actor.Principal.ActorKind), actor.Principal.ActorID, now)
		if err != nil {
			return err
		}
		if !moved {
			if _, err := getEntry(ctx, tx, accountID, messageID); err != nil {
				return err
			}
			return ErrReviewed
		}
		if q.hook != nil {
			hook := q.hook.Release
			if to == StatusRejected {
				hook = q.hook.Reject
			}
			if err := hook(ctx, tx, accountID, messageID); err != nil {
				return fmt.Errorf("quarantine %s hook: %w", to, err)
			}
		}
		if out, err = getEntry(ctx, tx, accountID, messageID); err != nil {
			return err
		}
		return q.auditReview(ctx, tx, actor, out)
	})
	if err != nil {
		return Entry{}, err
	}
	return out, nil
}

// ReviewTx moves a pending entry to status to, reviewed by
// reviewerKind/reviewerID at now, and reports whether it moved. The
// status guard makes the transition happen once: a second review, even a
// concurrent one or the retention sweeper's, updates no row.
func ReviewTx(ctx context.Context, tx store.Tx, accountID, messageID string, to Status, reviewerKind, reviewerID string, now time.Time) (bool, error) {
	n, err := tx.Exec(ctx, `UPDATE dlp_quarantine SET status = $1, reviewer_kind = $2, reviewer_id = $3, reviewed_at = $4
		WHERE account_id = $5 AND message_id = $6 AND status = $7`,
		string(to), reviewerKind, reviewerID, store.Micros(now), accountID, messageID, string(StatusPending))
	if err != nil {
		return false, fmt.Errorf("review quarantine entry: %w", err)
	}
	return n > 0, nil
}

// Held is a pending entry as the retention sweeper sees it.
type Held struct{ MessageID, RuleID string }

// PendingBeforeTx lists up to limit of the account's entries still
// pending that were created before cutoff, oldest first (index
// dlp_quarantine_status), for the retention sweeper.
func PendingBeforeTx(ctx context.Context, tx store.Tx, accountID string, cutoff time.Time, limit int) ([]Held, error) {
	rows, err := tx.Query(ctx, `SELECT message_id, rule_id FROM dlp_quarantine
		WHERE account_id = $1 AND status = $2 AND created_at < $3
		ORDER BY created_at, message_id LIMIT $4`, accountID, string(StatusPending), store.Micros(cutoff), limit)
	if err != nil {
		return nil, fmt.Errorf("find expired holds: %w", err)
	}
	defer rows.Close()
	var out []Held
	for rows.Next() {
		var h Held
		if err := rows.Scan(&h.MessageID, &h.RuleID); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (q *QuarantineStore) auditReview(ctx context.Context, tx store.Tx, actor account.Actor, e Entry) error {
	if q.audit == nil {
		return nil
	}
	action := "quarantine." + string(e.Status)
	_, err := q.audit.AppendTx(ctx, tx, audit.Event{AccountID: actor.Principal.AccountID, ActorKind: string(actor.Principal.ActorKind),
		ActorID: actor.Principal.ActorID, Action: action, Target: "message:" + e.MessageID, Outcome: audit.OutcomeSuccess,
		SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: map[string]string{"rule_id": e.RuleID}})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

func scanEntry(row store.Row) (Entry, error) {
	var e Entry
	var reasons string
	var created, reviewed int64
	if err := row.Scan(&e.MessageID, &e.RuleID, &reasons, &e.Status, &e.ReviewerKind, &e.ReviewerID, &created, &reviewed); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Entry{}, err
		}
		return Entry{}, fmt.Errorf("read quarantine entry: %w", err)
	}
	if err := json.Unmarshal([]byte(reasons), &e.Reasons); err != nil {
		return Entry{}, fmt.Errorf("read quarantine entry reasons: %w", err)
	}
	e.CreatedAt = store.FromMicros(created)
	if reviewed != 0 {
		t := store.FromMicros(reviewed)
		e.ReviewedAt = &t
	}
	return e, nil
}

package portal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// States of a portal message in the sender's list: whether its content can
// still be read, and if not, why.
const (
	// ListActive: readable (whether or not the recipient has read it).
	ListActive = "active"
	// ListExpired: the account's portal period has run out since it was
	// deposited (its content is shredded, or will be at the next sweep).
	ListExpired = "expired"
	// ListRecalled: the sender withdrew it; its content is shredded.
	ListRecalled = "recalled"
	// ListShredded: its content is gone although the current period has
	// not run out (shredded under a shorter period the account had then).
	ListShredded = "shredded"
)

// ListStates lists the states ListFilter.State may name.
var ListStates = []string{ListActive, ListExpired, ListRecalled, ListShredded}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 500
)

// ErrBadCursor: the cursor is not one List returned.
var ErrBadCursor = errors.New("portal: invalid cursor")

// ListFilter narrows List. Zero fields do not filter.
type ListFilter struct {
	// MessageID keeps the portal copies of one message (for an API
	// deposit, the message carrying its notice).
	MessageID string
	// Recipient keeps one recipient's messages, the address exactly as
	// the message addressed it.
	Recipient string
	// State is one of ListStates.
	State string
	// Limit is the page size (DefaultListLimit when 0, at most
	// MaxListLimit).
	Limit  int
	Cursor string
}

// Summary is a portal message as the sender's list shows it: never its
// content, subject, challenge or codes.
type Summary struct {
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	Recipient string `json:"recipient"`
	State     string `json:"state"` // one of ListStates
	// Attachments is how many files the message carries.
	Attachments int       `json:"attachments"`
	CreatedAt   time.Time `json:"created_at"`
	// ExpiresAt is CreatedAt plus the account's current portal period,
	// as in Status.
	ExpiresAt time.Time `json:"expires_at"`
	// FirstViewAt is when the recipient first read it (nil: never).
	FirstViewAt *time.Time `json:"first_viewed_at"`
}

// Page is one page of the list, newest first; NextCursor is "" on the
// last page.
type Page struct {
	Messages   []Summary
	NextCursor string
}

// List returns the account's portal messages, newest first. A cursor not
// returned by List is ErrBadCursor; an unknown state is a *FieldError.
func (s *Service) List(ctx context.Context, accountID string, f ListFilter) (Page, error) {
	if f.Limit <= 0 || f.Limit > MaxListLimit {
		f.Limit = DefaultListLimit
	}
	if f.State != "" && !slices.Contains(ListStates, f.State) {
		return Page{}, &FieldError{Field: "state", Message: "one of " + strings.Join(ListStates, ", ")}
	}
	lifetime, err := s.lifetime(ctx, accountID)
	if err != nil {
		return Page{}, err
	}
	now := s.now()
	where, args, err := listWhere(accountID, f, store.Micros(now.Add(-lifetime)))
	if err != nil {
		return Page{}, err
	}
	list, err := s.summaries(ctx, where, args, f.Limit+1, lifetime, now)
	if err != nil {
		return Page{}, err
	}
	var page Page
	if len(list) > f.Limit {
		list = list[:f.Limit]
		last := list[len(list)-1]
		page.NextCursor = store.EncodeCursor(last.CreatedAt, last.ID)
	}
	page.Messages = list
	return page, nil
}

// listWhere is the WHERE clause of a List query and its arguments. cutoff
// is the creation time (micros) at or before which a message has expired.
func listWhere(accountID string, f ListFilter, cutoff int64) (string, []any, error) {
	where := []string{"account_id = $1"}
	args := []any{accountID}
	add := func(cond string, vs ...any) {
		for _, v := range vs {
			args = append(args, v)
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
		}
		where = append(where, cond)
	}
	if f.MessageID != "" {
		add("message_id = ?", f.MessageID)
	}
	if f.Recipient != "" {
		add("recipient = ?", f.Recipient)
	}
	// The same rules as listState, in SQL.
	switch f.State {
	case ListActive:
		add("recalled_at IS NULL AND shredded_at IS NULL AND created_at > ?", cutoff)
	case ListExpired:
		add("recalled_at IS NULL AND created_at <= ?", cutoff)
	case ListRecalled:
		add("recalled_at IS NOT NULL")
	case ListShredded:
		add("recalled_at IS NULL AND shredded_at IS NOT NULL AND created_at > ?", cutoff)
	}
	if f.Cursor != "" {
		created, id, ok := store.DecodeCursor(f.Cursor)
		if !ok {
			return "", nil, ErrBadCursor
		}
		add("(created_at < ? OR (created_at = ? AND id < ?))", created, created, id)
	}
	return "WHERE " + strings.Join(where, " AND "), args, nil
}

// listState derives a message's list state from its row.
func listState(recalled, shredded bool, expires, now time.Time) string {
	switch {
	case recalled:
		return ListRecalled
	case !now.Before(expires):
		return ListExpired
	case shredded:
		return ListShredded
	default:
		return ListActive
	}
}

func (s *Service) summaries(ctx context.Context, where string, args []any, limit int, lifetime time.Duration,
	now time.Time) ([]Summary, error) {
	rows, err := s.db.Reader().Query(ctx, `SELECT id, message_id, recipient, attachments, created_at, first_viewed_at, recalled_at,
		shredded_at FROM portal_messages `+where+" ORDER BY created_at DESC, id DESC LIMIT "+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list portal messages: %w", err)
	}
	defer rows.Close()
	var out []Summary
	for rows.Next() {
		var m Summary
		var created int64
		var viewed, recalled, shredded *int64
		if err := rows.Scan(&m.ID, &m.MessageID, &m.Recipient, &m.Attachments, &created, &viewed, &recalled, &shredded); err != nil {
			return nil, fmt.Errorf("list portal messages: %w", err)
		}
		m.CreatedAt = store.FromMicros(created).UTC()
		m.ExpiresAt = m.CreatedAt.Add(lifetime)
		if viewed != nil {
			t := store.FromMicros(*viewed).UTC()
			m.FirstViewAt = &t
		}
		m.State = listState(recalled != nil, shredded != nil, m.ExpiresAt, now)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list portal messages: %w", err)
	}
	return out, nil
}

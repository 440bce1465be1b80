package audit

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sealpost/sealpost/internal/store"
)

// Page sizes of List.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

const cursorVersion = 1

const selectEvents = `SELECT account_id, seq, id, time, actor_kind, actor_id, action, target, outcome,
	source_ip, request_id, details, prev_hash, hash FROM audit_events`

// List returns one page of the account's events, oldest first. It reads
// only rows of accountID, whatever the cursor says: a cursor is just a
// position (the last seq seen), never an account.
func (l *Log) List(ctx context.Context, accountID string, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return Page{}, err
	}
	where := []string{"account_id = $1", "seq > $2"}
	args := []any{accountID, after}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !q.Since.IsZero() {
		add("time >= $%d", store.Micros(q.Since))
	}
	if !q.Until.IsZero() {
		add("time < $%d", store.Micros(q.Until))
	}
	if q.Action != "" {
		add("action = $%d", q.Action)
	}
	if q.ActorID != "" {
		add("actor_id = $%d", q.ActorID)
	}
	args = append(args, limit+1)
	query := fmt.Sprintf("%s WHERE %s ORDER BY seq LIMIT $%d", selectEvents, strings.Join(where, " AND "), len(args))
	events, err := l.query(ctx, query, args...)
	if err != nil {
		return Page{}, err
	}
	var page Page
	if len(events) > limit {
		events = events[:limit]
		page.NextCursor = encodeCursor(events[limit-1].Seq)
	}
	page.Events = events
	return page, nil
}

func (l *Log) query(ctx context.Context, query string, args ...any) ([]Event, error) {
	rows, err := l.db.Reader().Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEvent(rows store.Rows) (Event, error) {
	var e Event
	var at int64
	var details string
	if err := rows.Scan(&e.AccountID, &e.Seq, &e.ID, &at, &e.ActorKind, &e.ActorID, &e.Action, &e.Target,
		&e.Outcome, &e.SourceIP, &e.RequestID, &details, &e.PrevHash, &e.Hash); err != nil {
		return Event{}, fmt.Errorf("scan audit event: %w", err)
	}
	e.Time = store.FromMicros(at)
	if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
		// A row whose details are not a JSON object of strings was not
		// written by Append; keep it visible (Verify flags its hash).
		e.Details = map[string]string{"_unparseable": "true"}
	}
	return e, nil
}

func encodeCursor(seq int64) string {
	var b [9]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 9 || b[0] != cursorVersion {
		return 0, fmt.Errorf("%w", ErrBadCursor)
	}
	seq := int64(binary.BigEndian.Uint64(b[1:]))
	if seq < 0 {
		return 0, fmt.Errorf("%w", ErrBadCursor)
	}
	return seq, nil
}

package messages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// Message is a message's status with its recipients.
type Message struct {
	ID        string            `json:"id"`
	MessageID string            `json:"message_id"`
	From      string            `json:"from"`
	Kind      string            `json:"kind"`
	Tags      []string          `json:"tags"`
	Metadata  map[string]string `json:"metadata"`
	Size      int64             `json:"size"`
	SendAt    time.Time         `json:"send_at"`
	CreatedAt time.Time         `json:"created_at"`
	Status    string            `json:"status"`

	// BodyRetained is false once retention deleted the sealed body
	// (package retention); BodyShreddedAt says when.
	BodyRetained   bool        `json:"body_retained"`
	BodyShreddedAt *time.Time  `json:"body_shredded_at"`
	Recipients     []Recipient `json:"recipients"`
}

// Recipient is one recipient's delivery state and its evidence.
type Recipient struct {
	Address     string     `json:"address"`
	Kind        string     `json:"kind"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"next_attempt_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	DeliveredAt *time.Time `json:"delivered_at"`
	RemoteHost  string     `json:"remote_host,omitempty"`
	TLSVersion  string     `json:"tls_version,omitempty"`
	TLSCipher   string     `json:"tls_cipher,omitempty"`
	SMTPCode    int        `json:"smtp_code,omitempty"`
	SMTPReply   string     `json:"smtp_reply,omitempty"`
	// Encryption is SecureLine's decision for the recipient, once made.
	Encryption *Encryption `json:"encryption,omitempty"`
}

// Encryption is how a recipient's copy is protected and why (package
// secureline; the reasons never carry PHI).
type Encryption struct {
	Method  string   `json:"method"`
	Reasons []string `json:"reasons"`
}

// Get returns a message of the account (store.ErrNotFound otherwise).
func (s *Service) Get(ctx context.Context, accountID, id string) (Message, error) {
	list, err := s.list(ctx, "WHERE account_id = $1 AND id = $2", []any{accountID, id}, 1)
	if err != nil {
		return Message{}, err
	}
	if len(list) == 0 {
		return Message{}, fmt.Errorf("message: %w", store.ErrNotFound)
	}
	return list[0], nil
}

// Filter narrows List.
type Filter struct {
	Tag   string
	Since time.Time
	Until time.Time
	// State keeps messages with at least one recipient in this state
	// (one of States).
	State  string
	Limit  int
	Cursor string
}

// ErrBadCursor: the cursor is not one List returned.
var ErrBadCursor = errors.New("messages: invalid cursor")

// Page is one page of messages, newest first.
type Page struct {
	Messages   []Message
	NextCursor string
}

// List returns the account's messages, newest first.
func (s *Service) List(ctx context.Context, accountID string, f Filter) (Page, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	where := []string{"account_id = $1"}
	args := []any{accountID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", store.Micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at < ?", store.Micros(f.Until))
	}
	if f.Tag != "" {
		b, _ := json.Marshal(f.Tag)
		add("tags LIKE ?", "%"+likeEscape(string(b))+"%")
		where[len(where)-1] += ` ESCAPE '\'`
	}
	if f.State != "" {
		cond, condArgs, err := stateFilter(f.State, s.opts.Now(), len(args)+1)
		if err != nil {
			return Page{}, err
		}
		args, where = append(args, condArgs...), append(where, cond)
	}
	if f.Cursor != "" {
		created, id, ok := store.DecodeCursor(f.Cursor)
		if !ok {
			return Page{}, ErrBadCursor
		}
		args = append(args, created, id)
		n := len(args)
		where = append(where, fmt.Sprintf("(created_at < $%d OR (created_at = $%d AND id < $%d))", n-1, n-1, n))
	}
	list, err := s.list(ctx, "WHERE "+strings.Join(where, " AND ")+" ORDER BY created_at DESC, id DESC", args, f.Limit+1)
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

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

func (s *Service) list(ctx context.Context, where string, args []any, limit int) ([]Message, error) {
	rows, err := s.db.Reader().Query(ctx, `SELECT id, header_id, from_addr, kind, tags, metadata, size, send_at, created_at,
		COALESCE(cancelled_at, 0), COALESCE(body_shredded_at, 0) FROM messages `+where+" LIMIT "+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	var out []Message
	for rows.Next() {
		var m Message
		var tags, meta string
		var sendAt, created, cancelled, shredded int64
		if err := rows.Scan(&m.ID, &m.MessageID, &m.From, &m.Kind, &tags, &meta, &m.Size, &sendAt, &created, &cancelled, &shredded); err != nil {
			rows.Close()
			return nil, err
		}
		_ = json.Unmarshal([]byte(tags), &m.Tags)
		_ = json.Unmarshal([]byte(meta), &m.Metadata)
		m.SendAt, m.CreatedAt = store.FromMicros(sendAt), store.FromMicros(created)
		m.BodyRetained = shredded == 0
		if shredded != 0 {
			t := store.FromMicros(shredded)
			m.BodyShreddedAt = &t
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Recipients, err = s.recipients(ctx, out[i].ID); err != nil {
			return nil, err
		}
		out[i].Status = summarize(out[i])
	}
	return out, nil
}

func (s *Service) recipients(ctx context.Context, messageID string) ([]Recipient, error) {
	rows, err := s.db.Reader().Query(ctx, `SELECT address, kind, state, attempts, next_attempt_at, updated_at, COALESCE(delivered_at, 0),
		remote_host, tls_version, tls_cipher, smtp_code, smtp_reply, enc_method, enc_reasons FROM message_recipients WHERE message_id = $1 ORDER BY rcpt_index`, messageID)
	if err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	defer rows.Close()
	now := s.opts.Now()
	var out []Recipient
	for rows.Next() {
		var r Recipient
		var next, updated, delivered int64
		var encMethod, encReasons string
		if err := rows.Scan(&r.Address, &r.Kind, &r.State, &r.Attempts, &next, &updated, &delivered, &r.RemoteHost,
			&r.TLSVersion, &r.TLSCipher, &r.SMTPCode, &r.SMTPReply, &encMethod, &encReasons); err != nil {
			return nil, err
		}
		if encMethod != "" {
			r.Encryption = &Encryption{Method: encMethod, Reasons: []string{}}
			_ = json.Unmarshal([]byte(encReasons), &r.Encryption.Reasons)
		}
		r.UpdatedAt = store.FromMicros(updated)
		if r.State == StateQueued || r.State == StateDeferred {
			t := store.FromMicros(next)
			r.NextAttempt = &t
			if r.State == StateQueued && t.After(now) {
				r.State = StateScheduled
			}
		}
		if delivered != 0 {
			t := store.FromMicros(delivered)
			r.DeliveredAt = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// summarize names a message's overall state: the least final state of
// its recipients.
func summarize(m Message) string {
	order := []string{StateScheduled, StateQueued, StateDeferred, StateQuarantined, StateFailed, StateBounced, StateSuppressed, StateCancelled, StateDelivered}
	for _, st := range order {
		for _, r := range m.Recipients {
			if r.State == st {
				return st
			}
		}
	}
	return StateQueued
}

// Cancel cancels a message's recipients that are still waiting
// (scheduled, queued, deferred or quarantined); false when none were.
// Each cancelled recipient gets a cancelled event in the same
// transaction, so webhooks hear of exactly the recipients it stopped.
func (s *Service) Cancel(ctx context.Context, accountID, id string) (bool, error) {
	var cancelled []int
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		now := s.opts.Now()
		var err error
		if cancelled, err = cancelRecipients(ctx, tx, accountID, id, now); err != nil || len(cancelled) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE messages SET cancelled_at = $1 WHERE account_id = $2 AND id = $3",
			store.Micros(now), accountID, id); err != nil {
			return fmt.Errorf("cancel message: %w", err)
		}
		for _, i := range cancelled {
			if err := recordEvent(ctx, tx, accountID, id, i, StateCancelled, now.UTC(), nil); err != nil {
				return err
			}
		}
		return nil
	})
	return len(cancelled) > 0, err
}

// cancelRecipients moves the waiting recipients that delivery does not
// hold right now to cancelled and returns their indexes, in order.
func cancelRecipients(ctx context.Context, tx store.Tx, accountID, id string, now time.Time) ([]int, error) {
	rows, err := tx.Query(ctx, `UPDATE message_recipients SET state = $1, updated_at = $2
		WHERE account_id = $3 AND message_id = $4 AND state IN ('queued', 'deferred', 'quarantined') AND lease_until < $2
		RETURNING rcpt_index`, StateCancelled, store.Micros(now), accountID, id)
	if err != nil {
		return nil, fmt.Errorf("cancel recipients: %w", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out) // RETURNING promises no order
	return out, nil
}

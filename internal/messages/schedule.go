package messages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/store"
)

// A scheduled message's recipients are stored queued with next_attempt_at
// at send_at; no delivery job exists for them until the periodic scan
// (package delivery) finds them due. Rescheduling therefore moves
// next_attempt_at (and the lifetime that counts from it); a message moved
// to now also gets its domains' jobs at once instead of at the next scan.

// EventRescheduled is the message event of a recipient whose send time
// moved.
const EventRescheduled = "rescheduled"

// ErrNotReschedulable: the message has a recipient that delivery already
// tried, holds, or finished (or none still waits), so its time cannot move.
var ErrNotReschedulable = errors.New("messages: only a message none of whose recipients has been attempted can be rescheduled")

// ErrBadState: a list filter names no recipient state.
var ErrBadState = errors.New("messages: unknown state")

// States lists the recipient states a list may filter by.
var States = []string{StateScheduled, StateQueued, StateDeferred, StateQuarantined, StateDelivered, StateBounced, StateSuppressed, StateFailed, StateCancelled}

// stateFilter is the condition "the message has a recipient in state" on
// the unaliased messages table, with its arguments numbered from next.
func stateFilter(state string, now time.Time, next int) (string, []any, error) {
	base := "EXISTS (SELECT 1 FROM message_recipients r WHERE r.account_id = messages.account_id AND r.message_id = messages.id AND "
	switch state {
	case StateScheduled:
		// A scheduled recipient's message has a future send_at too; saying
		// so lets an index on (account_id, send_at) narrow the scan.
		return fmt.Sprintf("messages.send_at > $%d AND ", next) + base + fmt.Sprintf("r.state = 'queued' AND r.next_attempt_at > $%d)", next),
			[]any{store.Micros(now)}, nil
	case StateQueued:
		return base + fmt.Sprintf("r.state = 'queued' AND r.next_attempt_at <= $%d)", next), []any{store.Micros(now)}, nil
	}
	for _, s := range States {
		if s == state {
			return base + fmt.Sprintf("r.state = $%d)", next), []any{state}, nil
		}
	}
	return "", nil, ErrBadState
}

// waiting is one recipient row as rescheduling sees it.
type waiting struct {
	index    int
	domain   string
	state    string
	attempts int
	leased   bool
	priority int
}

// Reschedule moves a message's send time to sendAt (a time not after now
// means now; at most MaxScheduleAhead ahead). Only a message none of whose
// recipients delivery has tried or holds can move (ErrNotReschedulable
// otherwise; suppressed recipients stay suppressed); another account's
// message is store.ErrNotFound. Each moved recipient gets a rescheduled
// event, and the sealed message's Date header follows the new time.
func (s *Service) Reschedule(ctx context.Context, accountID, id string, sendAt time.Time) (Message, error) {
	now := s.opts.Now()
	if sendAt.IsZero() {
		return Message{}, &mail.FieldError{Field: "send_at", Message: "required"}
	}
	if sendAt.After(now.Add(MaxScheduleAhead)) {
		return Message{}, &mail.FieldError{Field: "send_at", Message: "at most 30 days ahead"}
	}
	if sendAt.Before(now) {
		sendAt = now
	}
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		var sealed []byte
		if err := tx.QueryRow(ctx, "SELECT body_sealed FROM messages WHERE account_id = $1 AND id = $2", accountID, id).Scan(&sealed); err != nil {
			return fmt.Errorf("reschedule: %w", err)
		}
		rcpts, err := waitingRecipients(ctx, tx, accountID, id, now)
		if err != nil {
			return err
		}
		movable := 0
		for _, r := range rcpts {
			switch {
			case r.state == StateSuppressed:
			case r.state == StateQueued && r.attempts == 0 && !r.leased:
				movable++
			default:
				return ErrNotReschedulable
			}
		}
		if movable == 0 {
			return ErrNotReschedulable
		}
		next, expires, at := store.Micros(sendAt), store.Micros(sendAt.Add(s.opts.Lifetime)), store.Micros(now)
		// The conditions are checked again: a delivery claim that won a race
		// since the read above leaves its row alone, and the count tells.
		n, err := tx.Exec(ctx, `UPDATE message_recipients SET next_attempt_at = $1, expires_at = $2, updated_at = $3
			WHERE account_id = $4 AND message_id = $5 AND state = 'queued' AND attempts = 0 AND lease_until < $3`,
			next, expires, at, accountID, id)
		if err != nil {
			return fmt.Errorf("reschedule recipients: %w", err)
		}
		if n != int64(movable) {
			return ErrNotReschedulable
		}
		body, err := s.redate(ctx, accountID, id, sealed, sendAt)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE messages SET send_at = $1, body_sealed = $2 WHERE account_id = $3 AND id = $4",
			next, body, accountID, id); err != nil {
			return fmt.Errorf("reschedule message: %w", err)
		}
		if err := s.redateRecipientBodies(ctx, tx, accountID, id, sendAt); err != nil {
			return err
		}
		details := map[string]string{"send_at": sendAt.UTC().Format(time.RFC3339)}
		jobs := domainJobs{}
		for _, r := range rcpts {
			if r.state == StateSuppressed {
				continue
			}
			if err := recordEvent(ctx, tx, accountID, id, r.index, EventRescheduled, now, details); err != nil {
				return err
			}
			if !sendAt.After(now) {
				jobs.add(r.domain, r.priority)
			}
		}
		if s.queue == nil {
			return nil
		}
		return jobs.insert(ctx, s.queue, tx)
	})
	if err != nil {
		return Message{}, err
	}
	return s.Get(ctx, accountID, id)
}

func waitingRecipients(ctx context.Context, tx store.Tx, accountID, id string, now time.Time) ([]waiting, error) {
	rows, err := tx.Query(ctx, `SELECT rcpt_index, domain, state, attempts, lease_until, priority FROM message_recipients
		WHERE account_id = $1 AND message_id = $2 ORDER BY rcpt_index`, accountID, id)
	if err != nil {
		return nil, fmt.Errorf("reschedule: %w", err)
	}
	defer rows.Close()
	var out []waiting
	for rows.Next() {
		var w waiting
		var lease int64
		if err := rows.Scan(&w.index, &w.domain, &w.state, &w.attempts, &lease, &w.priority); err != nil {
			return nil, fmt.Errorf("reschedule: %w", err)
		}
		w.leased = lease >= store.Micros(now)
		out = append(out, w)
	}
	return out, rows.Err()
}

// redate returns the sealed message with its Date header set to at
// (RFC 5322 §3.6.1: the time the message is ready to enter the delivery
// system), or sealed unchanged when it has no body or no vault is set.
func (s *Service) redate(ctx context.Context, accountID, id string, sealed []byte, at time.Time) ([]byte, error) {
	if sealed == nil || s.vault == nil {
		return sealed, nil
	}
	ad := BodyAD(accountID, id)
	raw, err := s.vault.Open(ctx, accountID, sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("reschedule: open message: %w", err)
	}
	out, ok := replaceDate(raw, at)
	if !ok {
		return sealed, nil
	}
	return s.vault.Seal(ctx, accountID, out, ad)
}

// replaceDate replaces the value of the first Date header field of the
// header section (RFC 5322 §2.1: fields up to the first empty line).
func replaceDate(raw []byte, at time.Time) ([]byte, bool) {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	pos := 0
	for pos < end {
		eol := bytes.Index(raw[pos:], []byte("\r\n"))
		if eol < 0 {
			return nil, false
		}
		line := raw[pos : pos+eol]
		if len(line) >= 5 && bytes.EqualFold(line[:5], []byte("date:")) {
			var b bytes.Buffer
			b.Grow(len(raw))
			b.Write(raw[:pos])
			b.WriteString("Date: " + at.Format(time.RFC1123Z))
			rest := pos + eol // skip folded continuation lines (RFC 5322 §2.2.3)
			for rest+2 < len(raw) && (raw[rest+2] == ' ' || raw[rest+2] == '\t') {
				n := bytes.Index(raw[rest+2:], []byte("\r\n"))
				if n < 0 {
					return nil, false
				}
				rest += 2 + n
			}
			b.Write(raw[rest:])
			return b.Bytes(), true
		}
		pos += eol + 2
	}
	return nil, false
}

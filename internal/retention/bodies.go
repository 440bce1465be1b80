package retention

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// finalStates are the recipient states no delivery leaves: a message
// whose recipients are all in one is done with its body. (A delivered
// recipient may still turn bounced by a late DSN, which needs no body.)
const finalStates = "'delivered', 'bounced', 'suppressed', 'failed', 'cancelled'"

// MessageBodies shreds the sealed bodies of finished messages: the
// composed message (messages.body_sealed) and every recipient's own
// version (message_recipients.body_sealed). The message row, its
// recipients' delivery evidence and its events stay; body_shredded_at
// records when the bodies went.
type MessageBodies struct {
	DB *store.Store
	// Now is the clock stamping body_shredded_at (default time.Now).
	Now func() time.Time
	// BatchSize is how many messages one transaction examines (default
	// 500), so the SQLite writer is never held for long.
	BatchSize int
}

// Shred implements Shredder. A message is shredded when it was created
// before cutoff and every recipient is in a final state last changed
// before cutoff. It walks the account's messages that still hold a body
// (a partial index) oldest first by keyset (created_at, id), so each run
// reads only what is not shredded yet and each batch starts where the
// last one stopped; the check and the delete are one statement, so a
// recipient changing state meanwhile keeps its body.
func (m *MessageBodies) Shred(ctx context.Context, accountID string, cutoff, deadline time.Time) (int, bool, error) {
	batch := m.BatchSize
	if batch <= 0 {
		batch = 500
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	cut := store.Micros(cutoff)
	var afterCreated int64 = -1
	afterID := ""
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, false, err
		}
		if time.Now().After(deadline) {
			return total, false, nil
		}
		var scanned int
		err := m.DB.InTx(ctx, func(tx store.Tx) error {
			ids, lastCreated, lastID, err := candidates(ctx, tx, accountID, cut, afterCreated, afterID, batch)
			if err != nil || len(ids) == 0 {
				return err
			}
			scanned, afterCreated, afterID = len(ids), lastCreated, lastID
			n, err := shredBatch(ctx, tx, accountID, ids, cut, store.Micros(now()))
			total += n
			return err
		})
		if err != nil {
			return total, false, fmt.Errorf("shred message bodies: %w", err)
		}
		if scanned < batch {
			return total, true, nil
		}
	}
}

// candidates returns the next batch of the account's messages that still
// hold a body and were created before cutoff, after the keyset position
// (afterCreated, afterID). Messages still in flight (or scheduled) among
// them are read again by each sweep; they are few, bounded by the
// delivery lifetime and the scheduling horizon, unlike the history.
func candidates(ctx context.Context, q store.Querier, accountID string, cutoff, afterCreated int64, afterID string, limit int) (
	ids []string, lastCreated int64, lastID string, err error) {
	rows, err := q.Query(ctx, `SELECT id, created_at FROM messages
		WHERE account_id = $1 AND body_shredded_at IS NULL AND created_at < $2
			AND (created_at > $3 OR (created_at = $3 AND id > $4))
		ORDER BY created_at, id LIMIT $5`, accountID, cutoff, afterCreated, afterID, limit)
	if err != nil {
		return nil, 0, "", err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&lastID, &lastCreated); err != nil {
			return nil, 0, "", err
		}
		ids = append(ids, lastID)
	}
	return ids, lastCreated, lastID, rows.Err()
}

// ShredFinishedTx shreds, in the caller's transaction, the bodies of
// those of the account's messages ids whose recipients are all in a final
// state, however recently they got there, and returns how many it
// shredded. It is for a shredder of another kind that ends a message's
// last recipients itself (the quarantine expiry in package messages): the
// content outlived its own period, so message_body_days does not apply.
func ShredFinishedTx(ctx context.Context, tx store.Tx, accountID string, ids []string, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	return shredBatch(ctx, tx, accountID, ids, math.MaxInt64, store.Micros(now))
}

// shredBatch deletes the bodies of those of ids whose recipients are all
// final since before cutoff, and returns how many it shredded.
func shredBatch(ctx context.Context, tx store.Tx, accountID string, ids []string, cutoff, now int64) (int, error) {
	args := []any{accountID, cutoff, now}
	in := placeholders(len(args)+1, len(ids))
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := tx.Query(ctx, `UPDATE messages SET body_sealed = NULL, body_shredded_at = $3
		WHERE account_id = $1 AND body_shredded_at IS NULL AND id IN (`+in+`)
			AND NOT EXISTS (SELECT 1 FROM message_recipients r
				WHERE r.account_id = $1 AND r.message_id = messages.id
					AND (r.state NOT IN (`+finalStates+`) OR r.updated_at >= $2))
		RETURNING id`, args...)
	if err != nil {
		return 0, err
	}
	var done []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		done = append(done, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(done) == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE message_recipients SET body_sealed = NULL
		WHERE account_id = $1 AND body_sealed IS NOT NULL AND message_id IN (`+placeholders(2, len(done))+`)`,
		append([]any{accountID}, done...)...); err != nil {
		return 0, err
	}
	return len(done), nil
}

// placeholders returns "$first, $first+1, ..." n times.
func placeholders(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(first+i))
	}
	return b.String()
}

package messages

import (
	"context"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
)

// QuarantineExpiredReason is the smtp_reply of a recipient whose
// quarantine outlived the account's quarantine_days.
const QuarantineExpiredReason = "quarantine expired"

// sweeperActor names the retention sweeper as reviewer and audit actor.
const sweeperActor = "retention-sweeper"

// QuarantineExpiry ends DLP holds nobody reviewed in time: it implements
// retention.Shredder for retention.KindQuarantine. A hold older than the
// cutoff is rejected as the review API rejects (the entry turns
// "rejected", its quarantined recipients "failed" with a failed event),
// reviewed by the system actor "retention-sweeper" and audited as
// quarantine.rejected; the message's bodies are shredded once no
// recipient is still in flight. Envelope, recipients, events and the
// review entry stay.
type QuarantineExpiry struct {
	DB *store.Store
	// Audit records each expiry (nil: only the sweeper's per-account
	// retention.shredded event).
	Audit *audit.Log
	// Now is the clock stamping the review and the recipients (default
	// time.Now).
	Now func() time.Time
	// BatchSize is how many holds one transaction ends (default 200).
	BatchSize int
}

// expiredHold is a pending review entry past its account's period.
type expiredHold struct{ messageID, ruleID string }

// Shred implements retention.Shredder. n counts the holds it ended; the
// bodies of messages with another recipient still queued or deferred stay
// until message_body_days after that recipient finishes. Each batch is
// one transaction that re-reads the oldest pending holds through
// dlp_quarantine_status (account_id, status, created_at, message_id):
// an ended hold leaves that range, so no cursor is needed and a hold
// reviewed meanwhile by a person is skipped by the status guard.
func (q *QuarantineExpiry) Shred(ctx context.Context, accountID string, cutoff, deadline time.Time) (int, bool, error) {
	batch := q.BatchSize
	if batch <= 0 {
		batch = 200
	}
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, false, err
		}
		if time.Now().After(deadline) {
			return total, false, nil
		}
		var found, n int
		err := q.DB.InTx(ctx, func(tx store.Tx) error {
			holds, err := expiredHolds(ctx, tx, accountID, store.Micros(cutoff), batch)
			if err != nil {
				return err
			}
			found = len(holds)
			n, err = q.expire(ctx, tx, accountID, holds, now().UTC().Truncate(time.Microsecond))
			return err
		})
		if err != nil {
			return total, false, fmt.Errorf("expire quarantine: %w", err)
		}
		total += n
		if found < batch {
			return total, true, nil
		}
	}
}

func expiredHolds(ctx context.Context, tx store.Tx, accountID string, cutoff int64, limit int) ([]expiredHold, error) {
	rows, err := tx.Query(ctx, `SELECT message_id, rule_id FROM dlp_quarantine
		WHERE account_id = $1 AND status = $2 AND created_at < $3
		ORDER BY created_at, message_id LIMIT $4`, accountID, string(policy.StatusPending), cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("find expired holds: %w", err)
	}
	defer rows.Close()
	var out []expiredHold
	for rows.Next() {
		var h expiredHold
		if err := rows.Scan(&h.messageID, &h.ruleID); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// expire ends holds and shreds the bodies of the messages it finished.
func (q *QuarantineExpiry) expire(ctx context.Context, tx store.Tx, accountID string, holds []expiredHold, now time.Time) (int, error) {
	var ended []string
	for _, h := range holds {
		ok, err := q.expireOne(ctx, tx, accountID, h, now)
		if err != nil {
			return 0, fmt.Errorf("message %s: %w", h.messageID, err)
		}
		if ok {
			ended = append(ended, h.messageID)
		}
	}
	if _, err := retention.ShredFinishedTx(ctx, tx, accountID, ended, now); err != nil {
		return 0, fmt.Errorf("shred bodies: %w", err)
	}
	return len(ended), nil
}

// expireOne rejects one hold, unless a reviewer got there first.
func (q *QuarantineExpiry) expireOne(ctx context.Context, tx store.Tx, accountID string, h expiredHold, now time.Time) (bool, error) {
	// The same guard as a review (package policy): pending moves once.
	n, err := tx.Exec(ctx, `UPDATE dlp_quarantine SET status = $1, reviewer_kind = $2, reviewer_id = $3, reviewed_at = $4
		WHERE account_id = $5 AND message_id = $6 AND status = $7`, string(policy.StatusRejected), string(auth.ActorSystem), sweeperActor, store.Micros(now),
		accountID, h.messageID, string(policy.StatusPending))
	if err != nil || n == 0 {
		return false, err
	}
	held, err := heldRecipientsTx(ctx, tx, accountID, h.messageID)
	if err != nil {
		return false, err
	}
	for _, i := range held {
		if _, err := tx.Exec(ctx, `UPDATE message_recipients SET state = $1, smtp_reply = $2, updated_at = $3
			WHERE account_id = $4 AND message_id = $5 AND rcpt_index = $6 AND state = $7`, StateFailed, QuarantineExpiredReason,
			store.Micros(now), accountID, h.messageID, i, StateQuarantined); err != nil {
			return false, fmt.Errorf("reject recipient: %w", err)
		}
		if err := recordEvent(ctx, tx, accountID, h.messageID, i, StateFailed, now, map[string]string{"reason": QuarantineExpiredReason}); err != nil {
			return false, err
		}
	}
	if q.Audit == nil {
		return true, nil
	}
	_, err = q.Audit.AppendTx(ctx, tx, audit.Event{AccountID: accountID, ActorKind: string(auth.ActorSystem), ActorID: sweeperActor,
		Action: "quarantine.rejected", Target: "message:" + h.messageID, Outcome: audit.OutcomeSuccess,
		Details: map[string]string{"rule_id": h.ruleID, "reason": QuarantineExpiredReason}})
	if err != nil {
		return false, fmt.Errorf("audit quarantine.rejected: %w", err)
	}
	return true, nil
}

// heldRecipientsTx lists the indexes of a message's quarantined
// recipients.
func heldRecipientsTx(ctx context.Context, tx store.Tx, accountID, messageID string) ([]int, error) {
	rows, err := tx.Query(ctx, `SELECT rcpt_index FROM message_recipients WHERE account_id = $1 AND message_id = $2 AND state = $3
		ORDER BY rcpt_index`, accountID, messageID, StateQuarantined)
	if err != nil {
		return nil, fmt.Errorf("quarantined recipients: %w", err)
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
	return out, rows.Err()
}

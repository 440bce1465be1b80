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
			holds, err := policy.PendingBeforeTx(ctx, tx, accountID, cutoff, batch)
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

// expire ends holds and shreds the bodies of the messages it finished.
func (q *QuarantineExpiry) expire(ctx context.Context, tx store.Tx, accountID string, holds []policy.Held, now time.Time) (int, error) {
	var ended []string
	for _, h := range holds {
		ok, err := q.expireOne(ctx, tx, accountID, h, now)
		if err != nil {
			return 0, fmt.Errorf("message %s: %w", h.MessageID, err)
		}
		if ok {
			ended = append(ended, h.MessageID)
		}
	}
	if _, err := retention.ShredFinishedTx(ctx, tx, accountID, ended, now); err != nil {
		return 0, fmt.Errorf("shred bodies: %w", err)
	}
	return len(ended), nil
}

// expireOne rejects one hold, unless a reviewer got there first.
func (q *QuarantineExpiry) expireOne(ctx context.Context, tx store.Tx, accountID string, h policy.Held, now time.Time) (bool, error) {
	moved, err := policy.ReviewTx(ctx, tx, accountID, h.MessageID, policy.StatusRejected, string(auth.ActorSystem), sweeperActor, now)
	if err != nil || !moved {
		return false, err
	}
	if err := failHeldTx(ctx, tx, accountID, h.MessageID, QuarantineExpiredReason, now); err != nil {
		return false, err
	}
	if q.Audit == nil {
		return true, nil
	}
	_, err = q.Audit.AppendTx(ctx, tx, audit.Event{AccountID: accountID, ActorKind: string(auth.ActorSystem), ActorID: sweeperActor,
		Action: "quarantine.rejected", Target: "message:" + h.MessageID, Outcome: audit.OutcomeSuccess,
		Details: map[string]string{"rule_id": h.RuleID, "reason": QuarantineExpiredReason}})
	if err != nil {
		return false, fmt.Errorf("audit quarantine.rejected: %w", err)
	}
	return true, nil
}

package messages

import (
	"context"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
)

// StateQuarantined is a recipient a DLP policy rule holds for review
// (package policy's quarantine): not delivered until released.
const StateQuarantined = "quarantined"

// RejectedReason is the smtp_reply of a recipient rejected in review.
const RejectedReason = "rejected in quarantine"

// Release implements policy.Releaser: the message's quarantined
// recipients go back to the queue with fresh delivery jobs (and a fresh
// lifetime, which starts at release), or into the portal when that is
// their recorded method. It runs in the review's transaction.
func (s *Service) Release(ctx context.Context, tx store.Tx, accountID, messageID string) error {
	held, err := heldRecipients(ctx, tx, accountID, messageID)
	if err != nil {
		return err
	}
	now := s.opts.Now().UTC()
	jobs := domainJobs{}
	for _, h := range held {
		if h.method == string(secureline.MethodPortal) {
			if err := s.releaseToPortal(ctx, tx, accountID, messageID, h); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE message_recipients SET state = $1, next_attempt_at = $2, expires_at = $3, updated_at = $2
			WHERE account_id = $4 AND message_id = $5 AND rcpt_index = $6 AND state = $7`, StateQueued, store.Micros(now),
			store.Micros(now.Add(s.opts.Lifetime)), accountID, messageID, h.index, StateQuarantined); err != nil {
			return fmt.Errorf("release recipient: %w", err)
		}
		if err := recordEvent(ctx, tx, accountID, messageID, h.index, StateQueued, now, map[string]string{"reason": "released from quarantine"}); err != nil {
			return err
		}
		jobs.add(h.domain, h.priority)
	}
	return jobs.insert(ctx, s.queue, tx)
}

// Reject implements policy.Releaser: the quarantined recipients fail.
func (s *Service) Reject(ctx context.Context, tx store.Tx, accountID, messageID string) error {
	return failHeldTx(ctx, tx, accountID, messageID, RejectedReason, s.opts.Now().UTC())
}

// failHeldTx fails a message's quarantined recipients with reason, each
// with a failed event: a reviewer's reject and an expired hold alike.
func failHeldTx(ctx context.Context, tx store.Tx, accountID, messageID, reason string, now time.Time) error {
	held, err := heldRecipients(ctx, tx, accountID, messageID)
	if err != nil {
		return err
	}
	for _, h := range held {
		if _, err := tx.Exec(ctx, `UPDATE message_recipients SET state = $1, smtp_reply = $2, updated_at = $3
			WHERE account_id = $4 AND message_id = $5 AND rcpt_index = $6 AND state = $7`, StateFailed, reason,
			store.Micros(now), accountID, messageID, h.index, StateQuarantined); err != nil {
			return fmt.Errorf("reject recipient: %w", err)
		}
		if err := recordEvent(ctx, tx, accountID, messageID, h.index, StateFailed, now, map[string]string{"reason": reason}); err != nil {
			return err
		}
	}
	return nil
}

type heldRecipient struct {
	index, priority int
	address, domain string
	method          string
	ownBody         []byte
}

func heldRecipients(ctx context.Context, tx store.Tx, accountID, messageID string) ([]heldRecipient, error) {
	rows, err := tx.Query(ctx, `SELECT rcpt_index, priority, address, domain, enc_method, body_sealed FROM message_recipients
		WHERE account_id = $1 AND message_id = $2 AND state = $3 ORDER BY rcpt_index`, accountID, messageID, StateQuarantined)
	if err != nil {
		return nil, fmt.Errorf("quarantined recipients: %w", err)
	}
	defer rows.Close()
	var out []heldRecipient
	for rows.Next() {
		var h heldRecipient
		if err := rows.Scan(&h.index, &h.priority, &h.address, &h.domain, &h.method, &h.ownBody); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// releaseToPortal deposits a released recipient whose method is the
// portal, from its sealed composed body.
func (s *Service) releaseToPortal(ctx context.Context, tx store.Tx, accountID, messageID string, h heldRecipient) error {
	sl := s.opts.SecureLine
	if sl == nil || sl.Portal == nil || !sl.Portal.Enabled() {
		return fmt.Errorf("release to the portal: %w", portal.ErrNotConfigured)
	}
	var from string
	var body []byte
	if err := tx.QueryRow(ctx, "SELECT from_addr, body_sealed FROM messages WHERE account_id = $1 AND id = $2", accountID, messageID).
		Scan(&from, &body); err != nil {
		return fmt.Errorf("release to the portal: %w", err)
	}
	ad := BodyAD(accountID, messageID)
	if h.ownBody != nil {
		body, ad = h.ownBody, RecipientBodyAD(accountID, messageID, h.index)
	}
	raw, err := s.vault.Open(ctx, accountID, body, ad)
	if err != nil {
		return fmt.Errorf("release to the portal: open body: %w", err)
	}
	_, err = sl.Portal.DepositTx(ctx, tx, portal.Deposit{AccountID: accountID, MessageID: messageID, RcptIndex: h.index,
		Recipient: h.address, Sender: from, Raw: raw, Actor: portal.Actor{Kind: string(auth.ActorSystem), ID: "quarantine"}})
	if err != nil {
		return fmt.Errorf("release to the portal: %w", err)
	}
	return markPortalDelivered(ctx, tx, accountID, messageID, h.index, s.opts.Now())
}

// markPortalDelivered marks a recipient delivered through the portal
// (remote_host "portal"), with its delivered event.
func markPortalDelivered(ctx context.Context, tx store.Tx, accountID, messageID string, i int, at time.Time) error {
	at = at.UTC()
	if _, err := tx.Exec(ctx, `UPDATE message_recipients SET state = $1, remote_host = $2, delivered_at = $3, updated_at = $3
		WHERE account_id = $4 AND message_id = $5 AND rcpt_index = $6`, StateDelivered, PortalHost, store.Micros(at), accountID, messageID, i); err != nil {
		return fmt.Errorf("mark portal delivery: %w", err)
	}
	return recordEvent(ctx, tx, accountID, messageID, i, StateDelivered, at, map[string]string{"remote_host": PortalHost})
}

// PortalHost is the remote_host of a recipient delivered through the
// portal.
const PortalHost = "portal"

package portal

import (
	"context"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// defaultLifetime is the portal period of an account when the service
// has no Options.Lifetime: retention.DefaultPortalMessageDays.
const defaultLifetime = 30 * 24 * time.Hour

// lifetime is how long the account's messages stay readable now.
func (s *Service) lifetime(ctx context.Context, accountID string) (time.Duration, error) {
	d, err := s.opts.Lifetime(ctx, accountID)
	if err != nil {
		return 0, fmt.Errorf("portal retention of account %s: %w", accountID, err)
	}
	return d, nil
}

// expiresAt is when a message the account stored at created stops being
// readable under the account's current policy. The read path and the
// status ask it rather than the stored expires_at, so they agree with the
// retention sweep (Expiry), which counts from created_at too.
func (s *Service) expiresAt(ctx context.Context, accountID string, created time.Time) (time.Time, error) {
	d, err := s.lifetime(ctx, accountID)
	if err != nil {
		return time.Time{}, err
	}
	return created.Add(d), nil
}

// Expiry shreds the portal messages that outlived their account's
// portal period: it implements retention.Shredder for
// retention.KindPortalMessage, so the retention sweeper hands it the
// cutoff of the account's current policy (a shortened period reaches
// messages already stored at the next sweep). Each message loses its
// content, attachments, replies, pending notice and code, and its open
// sessions end; its row and its events stay. Each gets a portal_expired event and a portal.expired
// audit event, as when a link finds its message expired. It needs only
// the store and the audit log, so a sweep run from the command line
// shreds portal messages too.
type Expiry struct {
	DB *store.Store
	// Audit records each expiry (required: the portal audits every
	// expiry, as on access).
	Audit *audit.Log
	// Now is the clock stamping shredded_at and the events (default
	// time.Now).
	Now func() time.Time
	// BatchSize is how many messages one transaction shreds (default
	// 200).
	BatchSize int
}

// Shred implements retention.Shredder: it shreds the account's messages
// stored before cutoff. Each batch is one transaction that re-reads the
// oldest unshredded messages through the partial index
// portal_messages_unshredded; a shredded message leaves it, so no cursor
// is needed and history already shredded is never read again.
func (e *Expiry) Shred(ctx context.Context, accountID string, cutoff, deadline time.Time) (int, bool, error) {
	batch := e.BatchSize
	if batch <= 0 {
		batch = 200
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	system := Actor{Kind: string(auth.ActorSystem), ID: "portal"}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, false, err
		}
		if time.Now().After(deadline) {
			return total, false, nil
		}
		var found, n int
		err := e.DB.InTx(ctx, func(tx store.Tx) error {
			ids, err := unshreddedBefore(ctx, tx, accountID, store.Micros(cutoff), batch)
			if err != nil {
				return err
			}
			found = len(ids)
			at := now().UTC().Truncate(time.Microsecond)
			for _, id := range ids {
				done, err := shredTx(ctx, tx, e.Audit, accountID, id, EventExpired, "portal.expired", system, at)
				if err != nil {
					return fmt.Errorf("portal message %s: %w", id, err)
				}
				if done {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return total, false, fmt.Errorf("shred expired portal messages: %w", err)
		}
		total += n
		if found < batch {
			return total, true, nil
		}
	}
}

func unshreddedBefore(ctx context.Context, tx store.Tx, accountID string, cutoff int64, limit int) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM portal_messages WHERE account_id = $1 AND shredded_at IS NULL AND created_at < $2
		ORDER BY created_at, id LIMIT $3`, accountID, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("find expired portal messages: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

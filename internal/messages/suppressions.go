package messages

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/store"
)

// Suppression reasons.
const (
	ReasonHardBounce  = "hard_bounce"
	ReasonComplaint   = "complaint"
	ReasonUnsubscribe = "unsubscribe"
	ReasonManual      = "manual"
)

// Suppression is an address the account no longer sends to.
type Suppression struct {
	Address   string    `json:"address"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

// Suppress adds an address to the account's suppression list (a second
// add keeps the first reason).
func Suppress(ctx context.Context, q store.Querier, accountID, address, reason string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO suppressions (account_id, address, reason, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, address) DO NOTHING`, accountID, strings.ToLower(address), reason, store.Micros(at))
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

// AddSuppression suppresses an address by hand.
func (s *Service) AddSuppression(ctx context.Context, accountID, address string) (Suppression, error) {
	a, err := mail.ParseAddress("address", address)
	if err != nil {
		return Suppression{}, err
	}
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	if err := Suppress(ctx, s.db.Writer(), accountID, a.Addr(), ReasonManual, now); err != nil {
		return Suppression{}, err
	}
	list, err := s.suppressions(ctx, "WHERE account_id = $1 AND address = $2", accountID, strings.ToLower(a.Addr()))
	if err != nil || len(list) == 0 {
		return Suppression{}, errors.Join(err, store.ErrNotFound)
	}
	return list[0], nil
}

// RemoveSuppression lets the account send to an address again.
func (s *Service) RemoveSuppression(ctx context.Context, accountID, address string) error {
	n, err := s.db.Writer().Exec(ctx, "DELETE FROM suppressions WHERE account_id = $1 AND address = $2", accountID, strings.ToLower(address))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("suppression: %w", store.ErrNotFound)
	}
	return nil
}

// Suppressions lists the account's suppressed addresses.
func (s *Service) Suppressions(ctx context.Context, accountID string) ([]Suppression, error) {
	return s.suppressions(ctx, "WHERE account_id = $1 ORDER BY created_at DESC, address LIMIT 10000", accountID)
}

func (s *Service) suppressions(ctx context.Context, where string, args ...any) ([]Suppression, error) {
	rows, err := s.db.Reader().Query(ctx, "SELECT address, reason, created_at FROM suppressions "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	defer rows.Close()
	out := []Suppression{}
	for rows.Next() {
		var sp Suppression
		var created int64
		if err := rows.Scan(&sp.Address, &sp.Reason, &created); err != nil {
			return nil, err
		}
		sp.CreatedAt = store.FromMicros(created)
		out = append(out, sp)
	}
	return out, rows.Err()
}

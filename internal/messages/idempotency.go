package messages

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// IdempotencyWindow is how long an Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// idempotent returns the answer first given to key, when there is one
// within the window; a different request under the key is
// ErrIdempotencyConflict.
func (s *Service) idempotent(ctx context.Context, accountID, key string, hash []byte) (Accepted, bool, error) {
	var stored []byte
	var response string
	var created int64
	err := s.db.Reader().QueryRow(ctx, `SELECT request_hash, response, created_at FROM idempotency_keys
		WHERE account_id = $1 AND key = $2`, accountID, key).Scan(&stored, &response, &created)
	if errors.Is(err, store.ErrNotFound) {
		return Accepted{}, false, nil
	}
	if err != nil {
		return Accepted{}, false, fmt.Errorf("idempotency key: %w", err)
	}
	if s.opts.Now().Sub(store.FromMicros(created)) > IdempotencyWindow {
		// Expired: forget it, so the key can be used afresh.
		if _, err := s.db.Writer().Exec(ctx, "DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND created_at = $3",
			accountID, key, created); err != nil {
			return Accepted{}, false, err
		}
		return Accepted{}, false, nil
	}
	if subtle.ConstantTimeCompare(stored, hash) != 1 {
		return Accepted{}, false, ErrIdempotencyConflict
	}
	var prior Accepted
	if err := json.Unmarshal([]byte(response), &prior); err != nil {
		return Accepted{}, false, fmt.Errorf("idempotency key: stored answer: %w", err)
	}
	return prior, true, nil
}

// remember stores the answer to key in the acceptance's transaction.
func (s *Service) remember(ctx context.Context, tx store.Tx, accountID, key string, hash []byte, out Accepted) error {
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO idempotency_keys (account_id, key, request_hash, status, response, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, accountID, key, hash, 202, string(b), store.Micros(s.opts.Now()))
	return err
}

// SweepIdempotencyKeys deletes keys older than the window.
func (s *Service) SweepIdempotencyKeys(ctx context.Context) (int64, error) {
	return s.db.Writer().Exec(ctx, "DELETE FROM idempotency_keys WHERE created_at < $1",
		store.Micros(s.opts.Now().Add(-IdempotencyWindow)))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package webhooks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// Delivery is one event's delivery to one endpoint, as the log shows it.
// Its id is the event's id.
type Delivery struct {
	ID            string     `json:"id"`
	WebhookID     string     `json:"webhook_id"`
	EventType     string     `json:"event_type"`
	EventTime     time.Time  `json:"event_time"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	LastStatus    int        `json:"last_status_code"`
	LastError     string     `json:"last_error"`
	LastResponse  string     `json:"last_response"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// DeliveryFilter selects a page of the log; zero values mean no filter.
type DeliveryFilter struct {
	Status string
	Cursor string
	Limit  int // default 50, at most 500
}

// DeliveryPage is a page of the log, newest event first.
type DeliveryPage struct {
	Deliveries []Delivery
	NextCursor string
}

// Statuses lists the delivery statuses, for filters.
func Statuses() []string {
	return []string{StatusPending, StatusRetrying, StatusSucceeded, StatusFailed}
}

const deliveryColumns = `webhook_id, event_id, event_type, event_time, status, attempts, next_attempt_at, last_attempt_at,
	last_status_code, last_error, last_response, created_at, updated_at`

func scanDelivery(rows store.Row) (Delivery, error) {
	var d Delivery
	var eventTime, next, last, created, updated int64
	if err := rows.Scan(&d.WebhookID, &d.ID, &d.EventType, &eventTime, &d.Status, &d.Attempts, &next, &last, &d.LastStatus,
		&d.LastError, &d.LastResponse, &created, &updated); err != nil {
		return Delivery{}, err
	}
	d.EventTime, d.CreatedAt, d.UpdatedAt = store.FromMicros(eventTime), store.FromMicros(created), store.FromMicros(updated)
	if d.Status == StatusPending || d.Status == StatusRetrying {
		t := store.FromMicros(next)
		d.NextAttemptAt = &t
	}
	if last != 0 {
		t := store.FromMicros(last)
		d.LastAttemptAt = &t
	}
	return d, nil
}

// Deliveries lists a webhook's log, newest event first.
func (s *Service) Deliveries(ctx context.Context, accountID, webhookID string, f DeliveryFilter) (DeliveryPage, error) {
	if _, err := s.Get(ctx, accountID, webhookID); err != nil {
		return DeliveryPage{}, err
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	where := "WHERE account_id = $1 AND webhook_id = $2"
	args := []any{accountID, webhookID}
	if f.Status != "" {
		args = append(args, f.Status)
		where += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if f.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		if err != nil || len(b) != 36 {
			return DeliveryPage{}, ErrBadCursor
		}
		args = append(args, string(b))
		where += fmt.Sprintf(" AND event_id < $%d", len(args))
	}
	args = append(args, f.Limit+1)
	rows, err := s.db.Reader().Query(ctx, "SELECT "+deliveryColumns+" FROM webhook_deliveries "+where+
		fmt.Sprintf(" ORDER BY event_id DESC LIMIT $%d", len(args)), args...)
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("webhook deliveries: %w", err)
	}
	defer rows.Close()
	var page DeliveryPage
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return DeliveryPage{}, err
		}
		page.Deliveries = append(page.Deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return DeliveryPage{}, err
	}
	if len(page.Deliveries) > f.Limit {
		page.Deliveries = page.Deliveries[:f.Limit]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page.Deliveries[f.Limit-1].ID))
	}
	return page, nil
}

// Delivery returns one delivery of the account's webhook.
func (s *Service) Delivery(ctx context.Context, accountID, webhookID, id string) (Delivery, error) {
	d, err := scanDelivery(s.db.Reader().QueryRow(ctx, "SELECT "+deliveryColumns+
		" FROM webhook_deliveries WHERE account_id = $1 AND webhook_id = $2 AND event_id = $3", accountID, webhookID, id))
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook delivery: %w", err)
	}
	return d, nil
}

// Replay attempts a delivery again now, whatever its status, with the
// same event id, and returns it as recorded. It begins a new retry
// window: if the attempt fails the delivery is retried as usual (unless
// it has used all its attempts). ErrBusy when an attempt is in flight.
func (s *Service) Replay(ctx context.Context, accountID, webhookID, id string) (Delivery, error) {
	if _, err := s.Delivery(ctx, accountID, webhookID, id); err != nil {
		return Delivery{}, err
	}
	return s.attemptNow(ctx, accountID, webhookID, id, true)
}

// Test sends a ping event to a webhook now (enabled or not) and returns
// its delivery. A ping is attempted once; it is not retried.
func (s *Service) Test(ctx context.Context, accountID, webhookID string) (Delivery, error) {
	if _, err := s.Get(ctx, accountID, webhookID); err != nil {
		return Delivery{}, err
	}
	id := store.NewID()
	now := store.Micros(s.opts.Now())
	if _, err := s.db.Writer().Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, event_type, event_time,
		status, next_attempt_at, give_up_at, lease_until, lease_owner, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $5, $5, 0, '', $5, $5)`, webhookID, id, accountID, EventPing, now, StatusPending); err != nil {
		return Delivery{}, fmt.Errorf("store test delivery: %w", err)
	}
	return s.attemptNow(ctx, accountID, webhookID, id, false)
}

func (s *Service) attemptNow(ctx context.Context, accountID, webhookID, id string, restart bool) (Delivery, error) {
	// The attempt is recorded even if the caller goes away.
	ctx = context.WithoutCancel(ctx)
	batch, err := s.claim(ctx, accountID, webhookID, id, restart)
	if err != nil {
		return Delivery{}, err
	}
	if len(batch) == 0 {
		if _, err := s.Delivery(ctx, accountID, webhookID, id); errors.Is(err, store.ErrNotFound) {
			return Delivery{}, err
		}
		return Delivery{}, ErrBusy
	}
	if err := s.attempt(ctx, batch[0]); err != nil {
		return Delivery{}, err
	}
	return s.Delivery(ctx, accountID, webhookID, id)
}

// Prune deletes finished deliveries (succeeded or failed) last changed
// before before, in every account, and reports how many.
func (s *Service) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.db.Writer().Exec(ctx, `DELETE FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') AND updated_at < $1`,
		store.Micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	return n, nil
}

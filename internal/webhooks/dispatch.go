package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// boundID is the smallest UUIDv7 (RFC 9562 §5.7) of t's millisecond: ids
// of events made before t sort below it, as text too (lower-case hex).
func boundID(t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0))
	return fmt.Sprintf("%08x-%04x-7000-8000-000000000000", ms>>16, ms&0xffff)
}

func randomJitter() float64 { return 0.8 + 0.4*rand.Float64() }

// backoff is the wait after the given number of failed attempts: the
// first retry after FirstRetry, doubling up to MaxBackoff, times a jitter
// factor so that endpoints coming back are not hit by every retry at once.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.opts.FirstRetry
	for i := 1; i < attempts && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	return time.Duration(float64(d) * s.opts.Jitter())
}

// Dispatch runs the dispatcher once: until nothing is left to do or
// budget has passed, it fans new events out to the subscribed endpoints
// and attempts the due deliveries. It reports how many attempts it made.
func (s *Service) Dispatch(ctx context.Context, budget time.Duration) (int, error) {
	deadline := time.Now().Add(budget)
	attempted := 0
	for time.Now().Before(deadline) {
		fanned, err := s.FanOut(ctx)
		if err != nil {
			return attempted, err
		}
		batch, err := s.claim(ctx, "", "", "", false)
		if err != nil {
			return attempted, err
		}
		if len(batch) == 0 && fanned < DefaultFanOutBatch {
			return attempted, nil
		}
		s.attemptAll(ctx, batch)
		attempted += len(batch)
	}
	return attempted, nil
}

// FanOut reads each account's events after its cursor (up to
// DefaultFanOutBatch per account and run) and creates one delivery per
// subscribed, enabled endpoint in one INSERT ... SELECT, then moves the
// cursor. Events are read only once they are Settle old. It reports the
// most events it read for one account, so the caller knows whether a
// backlog remains (DefaultFanOutBatch).
func (s *Service) FanOut(ctx context.Context) (int, error) {
	rows, err := s.db.Reader().Query(ctx, "SELECT DISTINCT account_id FROM webhooks")
	if err != nil {
		return 0, fmt.Errorf("webhook accounts: %w", err)
	}
	var accounts []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return 0, err
		}
		accounts = append(accounts, a)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, err
	}
	most := 0
	for _, a := range accounts {
		read, inserted, err := s.fanOutAccount(ctx, a)
		if err != nil {
			return most, err
		}
		most = max(most, read)
		s.metrics.fannedOut.Add(float64(inserted))
	}
	return most, nil
}

func (s *Service) fanOutAccount(ctx context.Context, accountID string) (read int, inserted int64, err error) {
	now := s.opts.Now()
	// Event ids come from the producers' real clocks, whatever the
	// service's clock says.
	wall := time.Now()
	upper := boundID(wall.Add(-s.opts.Settle))
	if s.opts.Settle == 0 {
		// SQLite: everything committed is final; take the current
		// millisecond too.
		upper = boundID(wall.Add(time.Millisecond))
	}
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE" // one fan-out per account at a time
		}
		var cursor string
		err := tx.QueryRow(ctx, "SELECT last_event_id FROM webhook_cursors WHERE account_id = $1"+lock, accountID).Scan(&cursor)
		if errors.Is(err, store.ErrNotFound) {
			cursor = boundID(wall.Add(-s.opts.Settle))
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_cursors (account_id, last_event_id, updated_at) VALUES ($1, $2, $3)
				ON CONFLICT (account_id) DO NOTHING`, accountID, cursor, store.Micros(now)); err != nil {
				return err
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("webhook cursor: %w", err)
		}
		var last *string
		if err := tx.QueryRow(ctx, `SELECT max(id), count(*) FROM (SELECT id FROM message_events WHERE account_id = $1 AND id > $2 AND id < $3
			ORDER BY id LIMIT $4) batch`, accountID, cursor, upper, DefaultFanOutBatch).Scan(&last, &read); err != nil {
			return fmt.Errorf("webhook events: %w", err)
		}
		if last == nil {
			return nil
		}
		// SQLite needs the WHERE before ON CONFLICT of an INSERT ...
		// SELECT to tell the upsert from a join constraint.
		inserted, err = tx.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, event_type, event_time, status,
				next_attempt_at, give_up_at, created_at, updated_at)
			SELECT w.id, e.id, e.account_id, e.type, e.time, 'pending', CAST($4 AS BIGINT), CAST($5 AS BIGINT), CAST($4 AS BIGINT), CAST($4 AS BIGINT)
			FROM message_events e
			JOIN webhook_subscriptions ws ON ws.account_id = e.account_id AND ws.event_type = e.type
			JOIN webhooks w ON w.id = ws.webhook_id AND w.account_id = e.account_id
			WHERE e.account_id = $1 AND e.id > $2 AND e.id <= $3 AND w.enabled AND e.time >= w.created_at
			ON CONFLICT (webhook_id, event_id) DO NOTHING`,
			accountID, cursor, *last, store.Micros(now), store.Micros(now.Add(s.opts.RetryWindow)))
		if err != nil {
			return fmt.Errorf("fan out webhook events: %w", err)
		}
		if _, err := tx.Exec(ctx, "UPDATE webhook_cursors SET last_event_id = $1, updated_at = $2 WHERE account_id = $3",
			*last, store.Micros(now), accountID); err != nil {
			return fmt.Errorf("move webhook cursor: %w", err)
		}
		return nil
	})
	return read, inserted, err
}

// claimed is a delivery this node holds a lease on.
type claimed struct {
	AccountID, WebhookID, EventID, EventType string
	EventTime                                time.Time
	Attempts                                 int
	GiveUpAt                                 time.Time
	Owner                                    string
}

// claim leases due deliveries of enabled endpoints (BatchSize of them), or
// with eventID set that one delivery of the account whatever its status or
// schedule (a replay or a test); restart begins a new retry window.
func (s *Service) claim(ctx context.Context, accountID, webhookID, eventID string, restart bool) ([]claimed, error) {
	now := s.opts.Now()
	owner := store.NewID()
	lease := store.Micros(now.Add(s.opts.Timeout + 30*time.Second))
	var out []claimed
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		var rows store.Rows
		var err error
		if eventID != "" {
			giveUp := int64(0) // keep the delivery's window
			if restart {
				giveUp = store.Micros(now.Add(s.opts.RetryWindow))
			}
			rows, err = tx.Query(ctx, `UPDATE webhook_deliveries SET lease_until = $1, lease_owner = $2,
				give_up_at = CASE WHEN CAST($6 AS BIGINT) > 0 THEN CAST($6 AS BIGINT) ELSE give_up_at END
				WHERE account_id = $3 AND webhook_id = $4 AND event_id = $5 AND lease_until < $7
				RETURNING account_id, webhook_id, event_id, event_type, event_time, attempts, give_up_at`,
				lease, owner, accountID, webhookID, eventID, giveUp, store.Micros(now))
		} else {
			lock := ""
			if tx.Dialect() == store.Postgres {
				lock = " FOR UPDATE OF d SKIP LOCKED" // nodes claim disjoint rows
			}
			rows, err = tx.Query(ctx, `UPDATE webhook_deliveries SET lease_until = $1, lease_owner = $2
				WHERE (webhook_id, event_id) IN (SELECT d.webhook_id, d.event_id FROM webhook_deliveries d
					JOIN webhooks w ON w.id = d.webhook_id AND w.account_id = d.account_id
					WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $3 AND d.lease_until < $3 AND w.enabled
					ORDER BY d.next_attempt_at LIMIT $4`+lock+`)
				RETURNING account_id, webhook_id, event_id, event_type, event_time, attempts, give_up_at`,
				lease, owner, store.Micros(now), s.opts.BatchSize)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := claimed{Owner: owner}
			var t, g int64
			if err := rows.Scan(&c.AccountID, &c.WebhookID, &c.EventID, &c.EventType, &t, &c.Attempts, &g); err != nil {
				return err
			}
			c.EventTime, c.GiveUpAt = store.FromMicros(t), store.FromMicros(g)
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return out, nil
}

// attemptAll attempts a batch, Concurrency at a time.
func (s *Service) attemptAll(ctx context.Context, batch []claimed) {
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for _, c := range batch {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.attempt(ctx, c); err != nil {
				s.opts.Logger.Warn("webhooks: attempt not recorded", "webhook_id", c.WebhookID, "event_id", c.EventID, "error", err.Error())
			}
		}()
	}
	wg.Wait()
}

// attempt sends one claimed delivery and records the outcome.
func (s *Service) attempt(ctx context.Context, c claimed) error {
	url, secrets, err := s.endpoint(ctx, c.AccountID, c.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile; its deliveries went with it
	}
	if err != nil {
		return err
	}
	body, err := s.payload(ctx, c)
	var res result
	switch {
	case errors.Is(err, store.ErrNotFound):
		res = result{err: "the event is no longer stored"}
		c.GiveUpAt = time.Time{} // nothing to retry
	case err != nil:
		return err
	default:
		res = s.sender.post(ctx, url, secrets, c.EventID, c.EventType, body)
	}
	if !res.ok() {
		// Ids and the cause only: the URL may carry a receiver's token.
		s.opts.Logger.Debug("webhooks: attempt failed", "webhook_id", c.WebhookID, "event_id", c.EventID,
			"status", res.code, "cause", res.describe())
	}
	return s.record(ctx, c, res)
}

// record stores an attempt's outcome on the delivery this claim holds.
func (s *Service) record(ctx context.Context, c claimed, res result) error {
	now := s.opts.Now()
	attempts := c.Attempts + 1
	status, next := StatusSucceeded, now
	if !res.ok() {
		status, next = StatusRetrying, now.Add(s.backoff(attempts))
		if attempts >= s.opts.MaxAttempts || !next.Before(c.GiveUpAt) {
			status = StatusFailed
		}
	}
	n, err := s.db.Writer().Exec(ctx, `UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, lease_until = 0,
		lease_owner = '', last_attempt_at = $4, last_status_code = $5, last_error = $6, last_response = $7, updated_at = $4
		WHERE account_id = $8 AND webhook_id = $9 AND event_id = $10 AND lease_owner = $11`,
		status, attempts, store.Micros(next), store.Micros(now), res.code, sanitize(res.describe(), maxErrorLen), res.response,
		c.AccountID, c.WebhookID, c.EventID, c.Owner)
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	if n > 0 {
		s.metrics.outcomes.WithLabelValues(status).Inc()
		s.metrics.duration.Observe(res.took.Seconds())
	}
	return nil
}

// Payload is the JSON body of a webhook request: one event. Field names
// are stable; new fields may be added.
type Payload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	WebhookID string          `json:"webhook_id"`
	Message   *PayloadMessage `json:"message,omitempty"`
	Recipient string          `json:"recipient,omitempty"`
	Details   map[string]any  `json:"details"`
}

// PayloadMessage identifies the message an event is about. It never holds
// the subject or the body (PHI).
type PayloadMessage struct {
	ID        string            `json:"id"`
	MessageID string            `json:"message_id"`
	Tags      []string          `json:"tags"`
	Metadata  map[string]string `json:"metadata"`
}

// payload builds the body of a delivery from its event, as stored now.
func (s *Service) payload(ctx context.Context, c claimed) ([]byte, error) {
	p := Payload{ID: c.EventID, Type: c.EventType, Time: c.EventTime, WebhookID: c.WebhookID, Details: map[string]any{}}
	if c.EventType == EventPing {
		p.Details["message"] = "a test event sent from the Sealpost API"
		return json.Marshal(p)
	}
	m := &PayloadMessage{}
	var details, tags, metadata string
	var recipient *string
	err := s.db.Reader().QueryRow(ctx, `SELECT e.message_id, e.details, m.header_id, m.tags, m.metadata, r.address
		FROM message_events e JOIN messages m ON m.id = e.message_id AND m.account_id = e.account_id
		LEFT JOIN message_recipients r ON r.message_id = e.message_id AND r.rcpt_index = e.rcpt_index AND r.account_id = e.account_id
		WHERE e.account_id = $1 AND e.id = $2`, c.AccountID, c.EventID).Scan(&m.ID, &details, &m.MessageID, &tags, &metadata, &recipient)
	if err != nil {
		return nil, err
	}
	if recipient != nil {
		p.Recipient = *recipient
	}
	_ = json.Unmarshal([]byte(tags), &m.Tags)
	_ = json.Unmarshal([]byte(metadata), &m.Metadata)
	if m.Tags == nil {
		m.Tags = []string{}
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	p.Message = m
	// Details pass through as stored (delivery writes strings; other
	// producers may write other JSON values), empty values left out and
	// the SMTP code as a number.
	var raw map[string]any
	_ = json.Unmarshal([]byte(details), &raw)
	for k, v := range raw {
		if v == "" || v == nil {
			continue
		}
		if str, ok := v.(string); ok && k == "smtp_code" {
			if code, err := strconv.Atoi(str); err == nil {
				if code != 0 {
					p.Details[k] = code
				}
				continue
			}
		}
		p.Details[k] = v
	}
	return json.Marshal(p)
}

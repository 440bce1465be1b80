package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
)

// secretPrefix starts every signing secret, so a leaked one is easy to
// recognise (and scan for).
const secretPrefix = "whsec_"

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// secretAD binds a sealed secret to its account and webhook; previous
// secrets are bound separately so the two cannot be swapped.
func secretAD(accountID, id, which string) []byte {
	return []byte("webhooks/" + accountID + "/" + id + "/" + which)
}

// Create registers an endpoint with a new signing secret, returned once.
func (s *Service) Create(ctx context.Context, actor account.Actor, spec Spec) (WithSecret, error) {
	u, err := s.validateURL(spec.URL)
	if err != nil {
		return WithSecret{}, err
	}
	events, err := validateEvents(spec.Events)
	if err != nil {
		return WithSecret{}, err
	}
	accountID := actor.Principal.AccountID
	secret, err := newSecret()
	if err != nil {
		return WithSecret{}, err
	}
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	w := Webhook{ID: store.NewID(), AccountID: accountID, URL: u, Events: events, Enabled: spec.Enabled == nil || *spec.Enabled,
		CreatedAt: now, UpdatedAt: now}
	sealed, err := s.vault.Seal(ctx, accountID, []byte(secret), secretAD(accountID, w.ID, "secret"))
	if err != nil {
		return WithSecret{}, err
	}
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM webhooks WHERE account_id = $1", accountID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxWebhooks {
			return ErrTooMany
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhooks (id, account_id, url, enabled, secret_sealed, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, w.ID, accountID, w.URL, w.Enabled, sealed, store.Micros(now)); err != nil {
			return fmt.Errorf("store webhook: %w", err)
		}
		if err := setEvents(ctx, tx, accountID, w.ID, events); err != nil {
			return err
		}
		// The account's first webhook starts its cursor now: history
		// before it is never delivered.
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_cursors (account_id, last_event_id, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (account_id) DO NOTHING`, accountID, boundID(time.Now().Add(-s.opts.Settle)), store.Micros(now)); err != nil {
			return fmt.Errorf("start webhook cursor: %w", err)
		}
		return s.audit(ctx, tx, actor, "webhook.created", w.ID, describe(w))
	})
	if err != nil {
		return WithSecret{}, err
	}
	return WithSecret{Webhook: w, Secret: secret}, nil
}

func setEvents(ctx context.Context, tx store.Tx, accountID, id string, events []string) error {
	if _, err := tx.Exec(ctx, "DELETE FROM webhook_subscriptions WHERE account_id = $1 AND webhook_id = $2", accountID, id); err != nil {
		return fmt.Errorf("replace webhook events: %w", err)
	}
	for _, e := range events {
		if _, err := tx.Exec(ctx, "INSERT INTO webhook_subscriptions (webhook_id, account_id, event_type) VALUES ($1, $2, $3)",
			id, accountID, e); err != nil {
			return fmt.Errorf("store webhook events: %w", err)
		}
	}
	return nil
}

// describe is what the audit log records of a webhook: the URL's scheme
// and host (its path or query may carry a receiver's token), the events
// and the enabled flag.
func describe(w Webhook) map[string]string {
	host := ""
	if u, err := url.Parse(w.URL); err == nil {
		host = u.Scheme + "://" + u.Host
	}
	return map[string]string{"url_host": host, "events": strings.Join(w.Events, ","), "enabled": fmt.Sprint(w.Enabled)}
}

// List returns the account's webhooks, oldest first.
func (s *Service) List(ctx context.Context, accountID string) ([]Webhook, error) {
	return s.query(ctx, s.db.Reader(), "WHERE account_id = $1 ORDER BY id", accountID)
}

// Get returns a webhook of the account (store.ErrNotFound when it has
// none with that id).
func (s *Service) Get(ctx context.Context, accountID, id string) (Webhook, error) {
	return s.get(ctx, s.db.Reader(), accountID, id)
}

func (s *Service) get(ctx context.Context, q store.Querier, accountID, id string) (Webhook, error) {
	list, err := s.query(ctx, q, "WHERE account_id = $1 AND id = $2", accountID, id)
	if err != nil {
		return Webhook{}, err
	}
	if len(list) == 0 {
		return Webhook{}, fmt.Errorf("webhook: %w", store.ErrNotFound)
	}
	return list[0], nil
}

func (s *Service) query(ctx context.Context, q store.Querier, where string, args ...any) ([]Webhook, error) {
	rows, err := q.Query(ctx, `SELECT id, account_id, url, enabled, created_at, updated_at, previous_secret_until FROM webhooks `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	var out []Webhook
	for rows.Next() {
		var w Webhook
		var created, updated, prev int64
		if err := rows.Scan(&w.ID, &w.AccountID, &w.URL, &w.Enabled, &created, &updated, &prev); err != nil {
			rows.Close()
			return nil, err
		}
		w.CreatedAt, w.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
		if prev > store.Micros(s.opts.Now()) {
			w.PreviousSecretUntil = store.FromMicros(prev)
		}
		out = append(out, w)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Events, err = s.events(ctx, q, out[i].AccountID, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) events(ctx context.Context, q store.Querier, accountID, id string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT event_type FROM webhook_subscriptions WHERE account_id = $1 AND webhook_id = $2 ORDER BY event_type`,
		accountID, id)
	if err != nil {
		return nil, fmt.Errorf("webhook events: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Update changes a webhook's URL, events or enabled flag.
func (s *Service) Update(ctx context.Context, actor account.Actor, id string, c Change) (Webhook, error) {
	accountID := actor.Principal.AccountID
	var u string
	var events []string
	var err error
	if c.URL != nil {
		if u, err = s.validateURL(*c.URL); err != nil {
			return Webhook{}, err
		}
	}
	if c.Events != nil {
		if events, err = validateEvents(*c.Events); err != nil {
			return Webhook{}, err
		}
	}
	var out Webhook
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		w, err := s.get(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if c.URL != nil {
			w.URL = u
		}
		if c.Enabled != nil {
			w.Enabled = *c.Enabled
		}
		if c.Events != nil {
			w.Events = events
			if err := setEvents(ctx, tx, accountID, id, events); err != nil {
				return err
			}
		}
		w.UpdatedAt = s.opts.Now().UTC().Truncate(time.Microsecond)
		if _, err := tx.Exec(ctx, "UPDATE webhooks SET url = $1, enabled = $2, updated_at = $3 WHERE account_id = $4 AND id = $5",
			w.URL, w.Enabled, store.Micros(w.UpdatedAt), accountID, id); err != nil {
			return fmt.Errorf("update webhook: %w", err)
		}
		out = w
		return s.audit(ctx, tx, actor, "webhook.updated", id, describe(w))
	})
	return out, err
}

// Delete removes a webhook, its subscriptions and its delivery log.
func (s *Service) Delete(ctx context.Context, actor account.Actor, id string) error {
	accountID := actor.Principal.AccountID
	return s.db.InTx(ctx, func(tx store.Tx) error {
		w, err := s.get(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM webhook_deliveries WHERE account_id = $1 AND webhook_id = $2",
			"DELETE FROM webhook_subscriptions WHERE account_id = $1 AND webhook_id = $2",
			"DELETE FROM webhooks WHERE account_id = $1 AND id = $2",
		} {
			if _, err := tx.Exec(ctx, q, accountID, id); err != nil {
				return fmt.Errorf("delete webhook: %w", err)
			}
		}
		return s.audit(ctx, tx, actor, "webhook.deleted", id, describe(w))
	})
}

// RotateSecret gives a webhook a new signing secret, returned once. The
// previous secret keeps signing (a second v1 in the header) for
// keepPrevious, at most MaxPreviousSecret; zero retires it at once (for a
// leaked secret). Sealing happens before the transaction (on SQLite the
// vault may need the writer); the update applies only if no other
// rotation came in between, else ErrBusy.
func (s *Service) RotateSecret(ctx context.Context, actor account.Actor, id string, keepPrevious time.Duration) (WithSecret, error) {
	if keepPrevious < 0 || keepPrevious > MaxPreviousSecret {
		return WithSecret{}, &FieldError{Field: "keep_previous_seconds", Message: "from 0 to 604800 seconds"}
	}
	accountID := actor.Principal.AccountID
	w, err := s.get(ctx, s.db.Reader(), accountID, id)
	if err != nil {
		return WithSecret{}, err
	}
	var current []byte
	if err := s.db.Reader().QueryRow(ctx, "SELECT secret_sealed FROM webhooks WHERE account_id = $1 AND id = $2", accountID, id).
		Scan(&current); err != nil {
		return WithSecret{}, fmt.Errorf("load webhook secret: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return WithSecret{}, err
	}
	sealed, err := s.vault.Seal(ctx, accountID, []byte(secret), secretAD(accountID, id, "secret"))
	if err != nil {
		return WithSecret{}, err
	}
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	var previous []byte
	var until int64
	w.PreviousSecretUntil = time.Time{}
	if keepPrevious > 0 {
		plain, err := s.vault.Open(ctx, accountID, current, secretAD(accountID, id, "secret"))
		if err != nil {
			return WithSecret{}, err
		}
		if previous, err = s.vault.Seal(ctx, accountID, plain, secretAD(accountID, id, "previous")); err != nil {
			return WithSecret{}, err
		}
		until = store.Micros(now.Add(keepPrevious))
		w.PreviousSecretUntil = store.FromMicros(until)
	}
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		n, err := tx.Exec(ctx, `UPDATE webhooks SET secret_sealed = $1, previous_secret_sealed = $2, previous_secret_until = $3,
			updated_at = $4 WHERE account_id = $5 AND id = $6 AND secret_sealed = $7`, sealed, previous, until, store.Micros(now), accountID, id, current)
		if err != nil {
			return fmt.Errorf("rotate webhook secret: %w", err)
		}
		if n == 0 {
			return ErrBusy // deleted or rotated meanwhile
		}
		return s.audit(ctx, tx, actor, "webhook.secret_rotated", id,
			map[string]string{"previous_valid_seconds": fmt.Sprint(int64(keepPrevious.Seconds()))})
	})
	if err != nil {
		return WithSecret{}, err
	}
	w.UpdatedAt = now
	return WithSecret{Webhook: w, Secret: secret}, nil
}

// endpoint returns a webhook's URL and the secrets that sign its requests
// now, the current one first.
func (s *Service) endpoint(ctx context.Context, accountID, id string) (string, []string, error) {
	var u string
	var current, previous []byte
	var until int64
	err := s.db.Reader().QueryRow(ctx, `SELECT url, secret_sealed, previous_secret_sealed, previous_secret_until FROM webhooks
		WHERE account_id = $1 AND id = $2`, accountID, id).Scan(&u, &current, &previous, &until)
	if err != nil {
		return "", nil, fmt.Errorf("load webhook: %w", err)
	}
	plain, err := s.vault.Open(ctx, accountID, current, secretAD(accountID, id, "secret"))
	if err != nil {
		return "", nil, err
	}
	out := []string{string(plain)}
	if len(previous) > 0 && until > store.Micros(s.opts.Now()) {
		p, err := s.vault.Open(ctx, accountID, previous, secretAD(accountID, id, "previous"))
		if err != nil {
			return "", nil, fmt.Errorf("open previous webhook secret: %w", err)
		}
		out = append(out, string(p))
	}
	return u, out, nil
}

func (s *Service) audit(ctx context.Context, tx store.Tx, actor account.Actor, action, id string, details map[string]string) error {
	_, err := s.log.AppendTx(ctx, tx, audit.Event{AccountID: actor.Principal.AccountID, ActorKind: string(actor.Principal.ActorKind),
		ActorID: actor.Principal.ActorID, Action: action, Target: "webhook/" + id, Outcome: audit.OutcomeSuccess,
		SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: details})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

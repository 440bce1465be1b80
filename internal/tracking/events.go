package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
)

// MaxClicksRecorded is the most clicked events recorded per recipient of
// a message; later clicks still redirect.
const MaxClicksRecorded = 100

// Unsubscribe methods recorded in the event's details.
const (
	MethodOneClick = "one-click" // RFC 8058 POST by the mailbox provider
	MethodPage     = "page"      // the confirmation page's button
)

// recipient returns the address of the recipient a token names, checking
// that it exists in the token's account.
func (s *Service) recipient(ctx context.Context, q store.Querier, r Ref) (string, error) {
	var addr string
	err := q.QueryRow(ctx, "SELECT address FROM message_recipients WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3",
		r.AccountID, r.MessageID, r.Rcpt).Scan(&addr)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrInvalidToken
	}
	if err != nil {
		return "", fmt.Errorf("tracking recipient: %w", err)
	}
	return addr, nil
}

func (s *Service) decode(tok string, p Purpose) (Ref, error) {
	r, err := s.signer.decode(tok)
	if err != nil || r.Purpose != p {
		return Ref{}, ErrInvalidToken
	}
	return r, nil
}

// Open records the first open of the recipient a pixel token names (a
// later open records nothing). ErrInvalidToken for a bad token.
func (s *Service) Open(ctx context.Context, tok, userAgent string) error {
	r, err := s.decode(tok, PurposeOpen)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	return s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := s.recipient(ctx, tx, r); err != nil {
			return err
		}
		first, err := s.first(ctx, tx, r, EventOpened, now)
		if err != nil || !first {
			return err
		}
		return s.event(ctx, tx, r, EventOpened, now, map[string]any{"user_agent": classifyAgent(userAgent)})
	})
}

// Click records a click of the link a token names and returns its
// target, which is only ever the stored link of that message: a token
// cannot be made to redirect anywhere else. record false (a HEAD
// request) looks the target up without recording. ErrInvalidToken for a
// bad token or an unknown link.
func (s *Service) Click(ctx context.Context, tok, userAgent string, record bool) (string, error) {
	r, err := s.decode(tok, PurposeClick)
	if err != nil {
		return "", err
	}
	var sealed []byte
	err = s.db.Reader().QueryRow(ctx, "SELECT target_sealed FROM tracking_links WHERE account_id = $1 AND message_id = $2 AND link_index = $3",
		r.AccountID, r.MessageID, r.Link).Scan(&sealed)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrInvalidToken
	}
	if err != nil {
		return "", fmt.Errorf("tracking link: %w", err)
	}
	plain, err := s.vault.Open(ctx, r.AccountID, sealed, linkAD(r.AccountID, r.MessageID, r.Link))
	if err != nil {
		return "", fmt.Errorf("open link: %w", err)
	}
	target := string(plain)
	if u, err := url.Parse(target); err != nil || (strings.ToLower(u.Scheme) != "http" && strings.ToLower(u.Scheme) != "https") {
		return "", fmt.Errorf("tracking link %d of a message is not an http(s) URL", r.Link)
	}
	if !record {
		if _, err := s.recipient(ctx, s.db.Reader(), r); err != nil {
			return "", err
		}
		return target, nil
	}
	now := s.now().UTC()
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := s.recipient(ctx, tx, r); err != nil {
			return err
		}
		// A replayed link (a bot, a scanner) must not grow the event log
		// without bound: past the cap, clicks redirect unrecorded.
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM message_events WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3
			AND type = $4`, r.AccountID, r.MessageID, r.Rcpt, EventClicked).Scan(&n); err != nil {
			return fmt.Errorf("count clicks: %w", err)
		}
		if n >= MaxClicksRecorded {
			return nil
		}
		return s.event(ctx, tx, r, EventClicked, now, map[string]any{"link_index": r.Link,
			"user_agent": classifyAgent(userAgent)})
	})
	if err != nil {
		return "", err
	}
	return target, nil
}

// Unsubscription is what the confirmation page shows.
type Unsubscription struct {
	// Address is the recipient's address, masked (p***@example.org): a
	// forwarded message must not reveal it in full.
	Address string
	// From is the sender's address.
	From string
	// Done reports that the address is already suppressed.
	Done bool
}

// Unsubscription describes the recipient an unsubscribe token names.
func (s *Service) Unsubscription(ctx context.Context, tok string) (Unsubscription, error) {
	r, err := s.decode(tok, PurposeUnsubscribe)
	if err != nil {
		return Unsubscription{}, err
	}
	q := s.db.Reader()
	addr, err := s.recipient(ctx, q, r)
	if err != nil {
		return Unsubscription{}, err
	}
	var u Unsubscription
	if err := q.QueryRow(ctx, "SELECT from_addr FROM messages WHERE account_id = $1 AND id = $2", r.AccountID, r.MessageID).Scan(&u.From); err != nil {
		return Unsubscription{}, fmt.Errorf("tracking message: %w", err)
	}
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM suppressions WHERE account_id = $1 AND address = $2)",
		r.AccountID, strings.ToLower(addr)).Scan(&u.Done); err != nil {
		return Unsubscription{}, fmt.Errorf("tracking suppression: %w", err)
	}
	u.Address = maskAddress(addr)
	return u, nil
}

// Unsubscribe suppresses the recipient an unsubscribe token names, with
// reason unsubscribe, and records an unsubscribed event the first time.
// It is idempotent: a repeated POST changes nothing.
func (s *Service) Unsubscribe(ctx context.Context, tok, method string) error {
	r, err := s.decode(tok, PurposeUnsubscribe)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	return s.db.InTx(ctx, func(tx store.Tx) error {
		addr, err := s.recipient(ctx, tx, r)
		if err != nil {
			return err
		}
		// Suppress again even when this recipient unsubscribed before: an
		// operator may have lifted the suppression since, and the
		// recipient is asking once more.
		if err := messages.Suppress(ctx, tx, r.AccountID, addr, messages.ReasonUnsubscribe, now); err != nil {
			return err
		}
		first, err := s.first(ctx, tx, r, EventUnsubscribed, now)
		if err != nil || !first {
			return err
		}
		return s.event(ctx, tx, r, EventUnsubscribed, now, map[string]any{"method": method})
	})
}

// first claims the one-time event typ of the token's recipient; false
// when it was claimed before (on any node).
func (s *Service) first(ctx context.Context, tx store.Tx, r Ref, typ string, at time.Time) (bool, error) {
	n, err := tx.Exec(ctx, `INSERT INTO tracking_firsts (message_id, rcpt_index, type, account_id, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (message_id, rcpt_index, type) DO NOTHING`, r.MessageID, r.Rcpt, typ, r.AccountID, store.Micros(at))
	if err != nil {
		return false, fmt.Errorf("tracking first %s: %w", typ, err)
	}
	return n == 1, nil
}

// event appends to message_events, the history webhooks deliver.
func (s *Service) event(ctx context.Context, tx store.Tx, r Ref, typ string, at time.Time, details map[string]any) error {
	b, _ := json.Marshal(details)
	_, err := tx.Exec(ctx, `INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, store.NewID(), r.AccountID, r.MessageID, r.Rcpt, typ, store.Micros(at), string(b))
	if err != nil {
		return fmt.Errorf("record %s event: %w", typ, err)
	}
	return nil
}

// maskAddress keeps an address's first character and domain.
func maskAddress(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[:1]) + "***@" + domain
}

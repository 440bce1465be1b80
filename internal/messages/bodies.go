package messages

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/store"
)

// Per-recipient bodies. A message has one composed body for all its
// recipients unless ownBodies says its recipients differ (personalised
// template data; open/click tracking and List-Unsubscribe carry a
// per-recipient token too). Then every recipient gets its own composed
// message, built by draftFor from the message's draft, sealed under
// RecipientBodyAD into message_recipients.body_sealed, and delivery sends
// it in a transaction of its own. All of them share the Message-ID and
// Date of the message.

// RecipientBodyAD is the associated data sealing recipient rcpt's own
// body: distinct from BodyAD, so one recipient's body cannot be passed
// off as the message's or another recipient's.
func RecipientBodyAD(accountID, id string, rcpt int) []byte {
	return []byte("messages/" + accountID + "/" + id + "/rcpt/" + strconv.Itoa(rcpt) + "/body")
}

// ownBodies is the one predicate deciding whether p's recipients get
// bodies of their own. Add a reason here (and its change in draftFor).
func (s *Service) ownBodies(p *prepared) bool {
	return p.personal != nil && len(p.personal.perRcpt) > 0 || p.tracking != nil
}

// draftFor builds recipient i's draft from the message's draft p.draft:
// the one place where a recipient's content is made its own.
func (s *Service) draftFor(ctx context.Context, p *prepared, i int) (mail.Draft, error) {
	d := p.draft
	d.Headers = slices.Clip(d.Headers) // appending must not touch the message's draft
	if p.personal != nil && len(p.personal.perRcpt) > 0 {
		if err := p.personal.render(ctx, p.recipients[i], &d); err != nil {
			return mail.Draft{}, err
		}
	}
	if err := p.track(i, &d); err != nil {
		return mail.Draft{}, err
	}
	return d, nil
}

// sealRecipientBodies composes and seals every recipient's own body when
// ownBodies says so.
func (s *Service) sealRecipientBodies(ctx context.Context, accountID string, p *prepared) error {
	if !s.ownBodies(p) {
		return nil
	}
	for i := range p.recipients {
		d, err := s.draftFor(ctx, p, i)
		if err != nil {
			return err
		}
		d.MessageID = p.headerID
		p.recipients[i].draft = &d
		raw, _, err := mail.Build(d)
		if err != nil {
			return err
		}
		if len(raw) > MaxMessageBytes {
			return ErrTooLarge
		}
		p.size = max(p.size, len(raw))
		if p.recipients[i].sealed, err = s.vault.Seal(ctx, accountID, raw, RecipientBodyAD(accountID, p.id, i)); err != nil {
			return err
		}
	}
	return nil
}

// nullBytes binds a nil body as SQL NULL on every driver.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// redateRecipientBodies gives every recipient's own body of message id
// the Date at (Reschedule moves the message's send time).
func (s *Service) redateRecipientBodies(ctx context.Context, tx store.Tx, accountID, id string, at time.Time) error {
	if s.vault == nil {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT rcpt_index, body_sealed FROM message_recipients
		WHERE account_id = $1 AND message_id = $2 AND body_sealed IS NOT NULL`, accountID, id)
	if err != nil {
		return fmt.Errorf("reschedule: read recipient bodies: %w", err)
	}
	bodies := map[int][]byte{}
	for rows.Next() {
		var i int
		var b []byte
		if err := rows.Scan(&i, &b); err != nil {
			rows.Close()
			return err
		}
		bodies[i] = b
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i, sealed := range bodies {
		ad := RecipientBodyAD(accountID, id, i)
		raw, err := s.vault.Open(ctx, accountID, sealed, ad)
		if err != nil {
			return fmt.Errorf("reschedule: open recipient body: %w", err)
		}
		out, ok := replaceDate(raw, at)
		if !ok {
			continue
		}
		if sealed, err = s.vault.Seal(ctx, accountID, out, ad); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE message_recipients SET body_sealed = $1 WHERE account_id = $2 AND message_id = $3 AND rcpt_index = $4",
			sealed, accountID, id, i); err != nil {
			return fmt.Errorf("reschedule: store recipient body: %w", err)
		}
	}
	return nil
}

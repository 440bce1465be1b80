package messages

import (
	"context"
	"slices"
	"strconv"

	"github.com/sealpost/sealpost/internal/mail"
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

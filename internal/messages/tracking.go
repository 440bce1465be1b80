package messages

import (
	"context"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/store"
)

// Tracker instruments messages for open and click tracking and one-click
// unsubscribe (package tracking, wired in by package app). It decides
// per message from the request's Tracking and the account's defaults.
type Tracker interface {
	// Begin starts the instrumentation of a message; nil when the
	// message gets none (then its recipients may share one body).
	Begin(ctx context.Context, accountID, messageID, kind string, t Tracking) (MessageTracker, error)
}

// MessageTracker instruments one message's recipients. Its tokens carry
// the recipient index, so every recipient gets a body of its own.
type MessageTracker interface {
	// Recipient returns recipient rcpt's HTML body instrumented and the
	// header fields it adds (List-Unsubscribe, List-Unsubscribe-Post).
	Recipient(rcpt int, html string) (string, []mail.Header, error)
	// Seal seals what Insert stores; called once after the last
	// Recipient, outside the transaction.
	Seal(ctx context.Context) error
	// Insert stores it in the message's transaction.
	Insert(ctx context.Context, q store.Querier) error
}

// beginTracking asks the tracker about p; p.tracking stays nil when
// there is none or the message gets no tracking.
func (s *Service) beginTracking(ctx context.Context, accountID string, p *prepared, t Tracking) error {
	if s.opts.Tracker == nil {
		return nil
	}
	mt, err := s.opts.Tracker.Begin(ctx, accountID, p.id, p.kind, t)
	if err != nil {
		return err
	}
	p.tracking = mt
	return nil
}

// track applies p's tracking to recipient i's draft.
func (p *prepared) track(i int, d *mail.Draft) error {
	if p.tracking == nil {
		return nil
	}
	html, headers, err := p.tracking.Recipient(i, d.HTML)
	if err != nil {
		return err
	}
	d.HTML = html
	d.PlatformHeaders = append(d.PlatformHeaders[:len(d.PlatformHeaders):len(d.PlatformHeaders)], headers...)
	return nil
}

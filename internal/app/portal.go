package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// PortalNoticeTag marks the messages the portal sends (link notices,
// codes, forwarded replies), so policy and reports can tell them apart.
const PortalNoticeTag = "sealpost-portal"

// portalNotifier sends the portal's notices through the messages
// pipeline as the account's system actor. It lives here, not in package
// portal, so that portal does not depend on messages (SecureLine, which
// messages and delivery will call, deposits into portal).
type portalNotifier struct{ msgs *messages.Service }

// Notify implements portal.Notifier. Link and code notices carry no PHI
// and pin "tls" so the encryption decision never routes them to the
// portal again; replies carry PHI and take the account's policy ("auto").
func (n portalNotifier) Notify(ctx context.Context, note portal.Notice) (string, error) {
	actor := account.Actor{Principal: auth.Principal{AccountID: note.AccountID, ActorKind: auth.ActorSystem, ActorID: "portal",
		Scopes: []string{auth.ScopeMessagesSend}}}
	req := messages.Request{From: note.From, To: []string{note.To}, Subject: note.Subject, Text: note.Text, HTML: note.HTML,
		Kind: messages.KindTransactional, Tags: []string{PortalNoticeTag, "portal-" + note.Purpose}, Encryption: "tls",
		Metadata: map[string]string{"portal_message_id": note.PortalID}}
	if note.Purpose == portal.PurposeReply {
		req.Encryption = "auto"
	}
	if note.ReplyTo != "" {
		req.ReplyTo = []string{note.ReplyTo}
	}
	for _, a := range note.Attachments {
		req.Attachments = append(req.Attachments, messages.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content})
	}
	acc, err := n.msgs.Send(ctx, actor, req, note.IdempotencyKey)
	if err != nil {
		return "", err
	}
	return acc.ID, nil
}

// newPortal builds the recipient portal and its pages. Its links start
// with http.public_url; without one it refuses deposits.
func newPortal(ctx context.Context, cfg config.Config, s *store.Store, v *vault.Vault, master vault.MasterKey, q *queue.Queue,
	log *audit.Log, msgs *messages.Service, d *domains.Service, accounts *account.Store, policies *retention.Service,
	logger *slog.Logger) (*portal.Service, *portal.Web, error) {
	pc := cfg.Portal
	svc, err := portal.New(ctx, s, v, master, q, log, portalNotifier{msgs: msgs}, portal.Options{
		BaseURL: cfg.HTTP.PublicURL, CodeTTL: pc.CodeTTL, MaxAttempts: pc.MaxCodeAttempts, Lockout: pc.Lockout,
		IdleTimeout: pc.IdleTimeout, AbsoluteTimeout: pc.AbsoluteTimeout, Lifetime: portalLifetime(policies),
		SenderCheck: func(ctx context.Context, accountID, domain string) error {
			_, err := d.SigningKeys(ctx, accountID, domain)
			if err != nil {
				return portalSenderError(err)
			}
			return nil
		},
		AccountName: accounts.AccountName,
		Logger:      logger.With("component", "portal"),
	})
	if err != nil {
		return nil, nil, err
	}
	web, err := portal.NewWeb(svc)
	if err != nil {
		return nil, nil, err
	}
	if !svc.Enabled() {
		logger.Warn("http.public_url is not set: the recipient portal takes no messages")
	}
	return svc, web, nil
}

func portalSenderError(err error) error {
	if errors.Is(err, domains.ErrUnverified) {
		return &portal.FieldError{Field: "from", Message: "the sender's domain is not a verified sending domain of this account"}
	}
	return err
}

func registerPortalJobs(q *queue.Queue, svc *portal.Service) error {
	if err := queue.AddWorker(q, &portal.NotifyWorker{Service: svc}); err != nil {
		return err
	}
	if err := queue.AddWorker(q, &portal.SweepWorker{Service: svc}); err != nil {
		return err
	}
	return q.AddPeriodic(portal.SweepInterval, func() river.JobArgs { return portal.SweepArgs{} }, true)
}

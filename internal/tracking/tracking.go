// Package tracking owns open and click tracking and one-click
// unsubscribe: the signed tokens that name a recipient of a message (and
// a link) without revealing anything else, the rewriting of HTML bodies
// (tracked links, the open pixel), the List-Unsubscribe and
// List-Unsubscribe-Post header fields (RFC 2369, RFC 8058), the public
// endpoints those URLs reach, and the message_events they record
// (opened, clicked, unsubscribed). Click targets are stored sealed with
// the account's data key and looked up by (message, link index), so a
// token can only ever redirect to a link of its own message. Which
// messages are tracked is decided per message, else by the account's
// default for the kind of message. It does not send mail or deliver
// webhooks: package messages composes the instrumented bodies, and the
// webhook dispatcher reads the events.
package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Event types this package records in message_events.
const (
	EventOpened       = "opened"
	EventClicked      = "clicked"
	EventUnsubscribed = "unsubscribed"
)

// Options configure the service.
type Options struct {
	// BaseURL is the public URL recipients reach Sealpost at
	// (http.public_url), without a trailing slash. Empty turns tracking
	// and List-Unsubscribe off: links in mail must be absolute.
	BaseURL string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives server-side errors of the public endpoints, never
	// tokens, addresses or URLs. Nil discards them.
	Logger *slog.Logger
	// Audit records changes of account defaults. Nil records nothing.
	Audit *audit.Log
}

// Service tracks opens and clicks and unsubscribes recipients. Safe for
// concurrent use.
type Service struct {
	db     *store.Store
	vault  *vault.Vault
	signer signer
	base   string
	now    func() time.Time
	log    *slog.Logger
	audit  *audit.Log
}

// New returns the service; its token key is loaded (or created) under
// the master key.
func New(ctx context.Context, db *store.Store, v *vault.Vault, master vault.MasterKey, opts Options) (*Service, error) {
	key, err := tokenKey(ctx, db, master)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, vault: v, signer: signer{key: key}, base: strings.TrimRight(opts.BaseURL, "/"),
		now: opts.Now, log: opts.Logger, audit: opts.Audit}, nil
}

// Enabled reports whether the service can put links in mail (a public
// base URL is configured).
func (s *Service) Enabled() bool { return s.base != "" }

// Plan is what a message gets.
type Plan struct {
	Opens, Clicks bool
	// Unsubscribe adds List-Unsubscribe and List-Unsubscribe-Post and
	// resolves data-sp-unsubscribe links: every marketing message.
	Unsubscribe bool
}

// Any reports whether the plan changes the message at all, that is
// whether each recipient needs a body of its own.
func (p Plan) Any() bool { return p.Opens || p.Clicks || p.Unsubscribe }

// Settings are an account's tracking defaults for one kind of message.
type Settings struct {
	Opens  bool `json:"opens"`
	Clicks bool `json:"clicks"`
}

// DefaultSettings are the defaults of an account that set none:
// marketing is tracked, transactional mail (results, reminders) is not.
func DefaultSettings(kind string) Settings {
	if kind == messages.KindMarketing {
		return Settings{Opens: true, Clicks: true}
	}
	return Settings{}
}

// AccountSettings returns the account's defaults for kind.
func (s *Service) AccountSettings(ctx context.Context, accountID, kind string) (Settings, error) {
	var st Settings
	err := s.db.Reader().QueryRow(ctx, "SELECT opens, clicks FROM tracking_settings WHERE account_id = $1 AND kind = $2",
		accountID, kind).Scan(&st.Opens, &st.Clicks)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultSettings(kind), nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("tracking settings: %w", err)
	}
	return st, nil
}

// SetAccountSettings sets the account's defaults for kind.
func (s *Service) SetAccountSettings(ctx context.Context, accountID, kind string, st Settings) error {
	return s.setSettings(ctx, s.db.Writer(), accountID, kind, st)
}

func (s *Service) setSettings(ctx context.Context, q store.Querier, accountID, kind string, st Settings) error {
	if kind != messages.KindTransactional && kind != messages.KindMarketing {
		return fmt.Errorf("tracking settings: unknown kind %q", kind)
	}
	_, err := q.Exec(ctx, `INSERT INTO tracking_settings (account_id, kind, opens, clicks, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account_id, kind) DO UPDATE SET opens = excluded.opens, clicks = excluded.clicks, updated_at = excluded.updated_at`,
		accountID, kind, st.Opens, st.Clicks, store.Micros(s.now()))
	if err != nil {
		return fmt.Errorf("set tracking settings: %w", err)
	}
	return nil
}

// Defaults are an account's tracking defaults for both kinds of message.
type Defaults struct {
	Transactional Settings `json:"transactional"`
	Marketing     Settings `json:"marketing"`
}

// Defaults returns the account's defaults.
func (s *Service) Defaults(ctx context.Context, accountID string) (Defaults, error) {
	var d Defaults
	var err error
	if d.Transactional, err = s.AccountSettings(ctx, accountID, messages.KindTransactional); err != nil {
		return Defaults{}, err
	}
	if d.Marketing, err = s.AccountSettings(ctx, accountID, messages.KindMarketing); err != nil {
		return Defaults{}, err
	}
	return d, nil
}

// SetDefaults replaces the actor's account's defaults, audited as
// tracking.settings_updated (tracking a patient's reading is a privacy
// decision worth a record).
func (s *Service) SetDefaults(ctx context.Context, actor account.Actor, d Defaults) error {
	accountID := actor.Principal.AccountID
	return s.db.InTx(ctx, func(tx store.Tx) error {
		if err := s.setSettings(ctx, tx, accountID, messages.KindTransactional, d.Transactional); err != nil {
			return err
		}
		if err := s.setSettings(ctx, tx, accountID, messages.KindMarketing, d.Marketing); err != nil {
			return err
		}
		if s.audit == nil {
			return nil
		}
		b := strconv.FormatBool
		_, err := s.audit.AppendTx(ctx, tx, audit.Event{AccountID: accountID, ActorKind: string(actor.Principal.ActorKind),
			ActorID: actor.Principal.ActorID, Action: "tracking.settings_updated", Target: "tracking-settings", Outcome: audit.OutcomeSuccess,
			SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: map[string]string{
				"transactional_opens": b(d.Transactional.Opens), "transactional_clicks": b(d.Transactional.Clicks),
				"marketing_opens": b(d.Marketing.Opens), "marketing_clicks": b(d.Marketing.Clicks)}})
		if err != nil {
			return fmt.Errorf("audit tracking.settings_updated: %w", err)
		}
		return nil
	})
}

// PlanFor decides what a message of kind with the request's tracking
// options gets: each option the request sets wins, the account's
// default fills the rest. Without a base URL nothing is tracked.
func (s *Service) PlanFor(ctx context.Context, accountID, kind string, t messages.Tracking) (Plan, error) {
	if !s.Enabled() {
		return Plan{}, nil
	}
	p := Plan{Unsubscribe: kind == messages.KindMarketing}
	if t.Opens == nil || t.Clicks == nil {
		st, err := s.AccountSettings(ctx, accountID, kind)
		if err != nil {
			return Plan{}, err
		}
		p.Opens, p.Clicks = st.Opens, st.Clicks
	}
	if t.Opens != nil {
		p.Opens = *t.Opens
	}
	if t.Clicks != nil {
		p.Clicks = *t.Clicks
	}
	return p, nil
}

// Package portal is the recipient portal: the secure web fallback for
// recipients who cannot receive encrypted mail. A message deposited here
// is stored sealed with the account's data key; the recipient gets a
// notice carrying only a link (no PHI), proves control of the address
// with a one-time code (and optionally a sender-set passphrase or date of
// birth), then reads the message, downloads its attachments and replies
// securely in a short-lived session. Messages expire after the account's
// retention and may be recalled; either way their content is shredded.
// Every view, download, reply, code sent, failed code and lockout is an
// audit event and a message event (for webhooks).
//
// The package does not decide which recipients go to the portal (package
// secureline does) and does not send mail itself: notices, codes and
// replies leave through a Notifier, which the composition root backs with
// the messages pipeline.
package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Errors callers branch on.
var (
	// ErrLinkInvalid: the link token names no portal message (unknown or
	// tampered with). Deliberately one answer for both.
	ErrLinkInvalid = errors.New("portal: link not valid")
	// ErrExpired: the message outlived its retention; its content is gone.
	ErrExpired = errors.New("portal: message expired")
	// ErrRecalled: the sender withdrew the message.
	ErrRecalled = errors.New("portal: message recalled")
	// ErrLocked: too many wrong codes; the link is locked for a while.
	ErrLocked = errors.New("portal: link locked after failed codes")
	// ErrBadCode: the code (or the challenge answer) is wrong, expired or
	// already used.
	ErrBadCode = errors.New("portal: code not valid")
	// ErrCodeTooSoon: a code was sent moments ago; wait before asking again.
	ErrCodeTooSoon = errors.New("portal: a code was sent moments ago")
	// ErrNoSession: the cookie names no live session for this message.
	ErrNoSession = errors.New("portal: no session")
	// ErrNotFound: no such portal message in the account (API).
	ErrNotFound = errors.New("portal: not found")
	// ErrInvalid wraps refusals of bad input (*FieldError).
	ErrInvalid = errors.New("portal: invalid input")
	// ErrNotConfigured: the portal has no public URL to put in links
	// (http.public_url), so it takes no deposits.
	ErrNotConfigured = errors.New("portal: no public URL configured (http.public_url)")
)

// FieldError names the input field a refusal is about.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Message event types this package records (message_events.type), for
// webhooks and the status API. Details never hold content or codes.
const (
	EventDeposited   = "portal_deposited"
	EventNotified    = "portal_notified"
	EventCodeSent    = "portal_code_sent"
	EventCodeFailed  = "portal_code_failed"
	EventLocked      = "portal_locked"
	EventViewed      = "portal_viewed"
	EventDownloaded  = "portal_downloaded"
	EventReplied     = "portal_replied"
	EventRecalled    = "portal_recalled"
	EventExpired     = "portal_expired"
	EventSignedIn    = "portal_signed_in"
	EventSignedOut   = "portal_signed_out"
	EventIdleTimeout = "portal_idle_timeout"
)

// Notice purposes (Notice.Purpose).
const (
	PurposeLink  = "link"  // "you have a secure message": no PHI
	PurposeCode  = "code"  // the one-time code: no PHI
	PurposeReply = "reply" // a recipient's reply to the sender: PHI
)

// Notice is one email the portal asks to be sent.
type Notice struct {
	AccountID string
	Purpose   string
	// PortalID is the portal message the notice is about.
	PortalID string
	From     string // "Name <addr>": the original sender, a verified domain
	To       string
	ReplyTo  string
	Subject  string
	Text     string
	HTML     string
	// Attachments travel only with replies.
	Attachments []Attachment
	// IdempotencyKey makes a retried notice safe ("" for none).
	IdempotencyKey string
}

// Notifier accepts notices for delivery and returns the id of the message
// that carries each. Link and code notices carry no PHI and must never be
// routed to the portal again (they would loop); replies carry PHI and go
// through the account's encryption policy like any message.
type Notifier interface {
	Notify(ctx context.Context, n Notice) (messageID string, err error)
}

// Options tune the service. Zero values take the documented defaults.
type Options struct {
	// BaseURL is the absolute URL links start with ("https://mail.example").
	BaseURL string
	// CodeTTL is how long a one-time code works (default 10m).
	CodeTTL time.Duration
	// CodeInterval is the least time between two codes (default 30s).
	CodeInterval time.Duration
	// MaxAttempts wrong codes lock the link (default 5)...
	MaxAttempts int
	// ...for Lockout (default 15m).
	Lockout time.Duration
	// IdleTimeout ends a session without requests for this long (default 15m).
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after sign-in (default 1h).
	AbsoluteTimeout time.Duration
	// Lifetime returns how long the account's messages stay readable,
	// counted from deposit: its retention policy's portal_message_days
	// (the composition root passes package retention's). It is read
	// again at every use, so a changed policy applies to messages already
	// stored. Nil: 30 days for every account.
	Lifetime func(ctx context.Context, accountID string) (time.Duration, error)
	// SenderCheck, when set, refuses a deposit whose sender domain the
	// account may not send from (domains.SigningKeys).
	SenderCheck func(ctx context.Context, accountID, domain string) error
	// AccountName names an account for the pages and notices.
	AccountName func(ctx context.Context, accountID string) (string, error)
	Logger      *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service deposits, opens and shreds portal messages. Safe for concurrent
// use.
type Service struct {
	db     *store.Store
	vault  *vault.Vault
	queue  *queue.Queue
	audit  *audit.Log
	notify Notifier
	codes  []byte // HMAC key of one-time codes, shared by every node
	opts   Options
}

// New returns the service. master seals the node-shared key that hashes
// one-time codes (created by the first node that needs it).
func New(ctx context.Context, db *store.Store, v *vault.Vault, master vault.MasterKey, q *queue.Queue, log *audit.Log,
	n Notifier, opts Options) (*Service, error) {
	key, err := codeKey(ctx, db, master)
	if err != nil {
		return nil, err
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = 10 * time.Minute
	}
	if opts.CodeInterval <= 0 {
		opts.CodeInterval = 30 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Lockout <= 0 {
		opts.Lockout = 15 * time.Minute
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 15 * time.Minute
	}
	if opts.AbsoluteTimeout <= 0 {
		opts.AbsoluteTimeout = time.Hour
	}
	if opts.Lifetime == nil {
		opts.Lifetime = func(context.Context, string) (time.Duration, error) { return defaultLifetime, nil }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.AccountName == nil {
		opts.AccountName = func(context.Context, string) (string, error) { return "", nil }
	}
	return &Service{db: db, vault: v, queue: q, audit: log, notify: n, codes: key, opts: opts}, nil
}

// Enabled reports whether the portal takes deposits (it has a public
// URL for its links).
func (s *Service) Enabled() bool { return s.opts.BaseURL != "" }

// Options returns the service's effective options.
func (s *Service) Options() Options { return s.opts }

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// ContentAD is the associated data sealing a portal message's content:
// it binds the ciphertext to its account and portal message.
func ContentAD(accountID, id string) []byte {
	return []byte("portal/" + accountID + "/" + id + "/content")
}

func noticeAD(accountID, id string) []byte { return []byte("portal/" + accountID + "/" + id + "/link") }

func replyAD(accountID, portalID, id string) []byte {
	return []byte("portal/" + accountID + "/" + portalID + "/reply/" + id)
}

// event appends a message event for the portal message's carrier
// message; messages not yet tied to one (an API deposit before its notice
// is accepted) record none.
func event(ctx context.Context, q store.Querier, accountID, messageID string, rcpt int, typ string, at time.Time, details string) error {
	if messageID == "" {
		return nil
	}
	if details == "" {
		details = "{}"
	}
	_, err := q.Exec(ctx, `INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, store.NewID(), accountID, messageID, rcpt, typ, store.Micros(at), details)
	if err != nil {
		return fmt.Errorf("record %s event: %w", typ, err)
	}
	return nil
}

// Actor is who an audit event is attributed to.
type Actor struct {
	Kind, ID, SourceIP, RequestID string
}

// recipientActor is the audit actor of a recipient's action on the web.
func recipientActor(portalID, ip, requestID string) Actor {
	return Actor{Kind: "portal_recipient", ID: portalID, SourceIP: ip, RequestID: requestID}
}

func (s *Service) auditTx(ctx context.Context, tx store.Tx, accountID string, a Actor, action, portalID, outcome string,
	details map[string]string) error {
	_, err := s.audit.AppendTx(ctx, tx, audit.Event{AccountID: accountID, ActorKind: a.Kind, ActorID: a.ID, Action: action,
		Target: "portal_message/" + portalID, Outcome: outcome, SourceIP: a.SourceIP, RequestID: a.RequestID, Details: details})
	return err
}

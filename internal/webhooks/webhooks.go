// Package webhooks delivers an account's message events to the HTTPS
// endpoints it registers. It owns the endpoints (URL, subscribed event
// types, enabled flag, and a server-generated signing secret sealed by the
// account's data key), the dispatcher that reads message_events as an
// outbox after a per-account cursor and fans each new event out to the
// subscribed endpoints with one set-based INSERT, and the sender: signed
// POSTs (pkg/webhook) with exponential backoff and jitter, a per-request
// timeout, no redirects, TLS 1.2 or later, and a dialer that refuses
// private and loopback destinations unless configured otherwise (SSRF).
// Every attempt's outcome is kept in the delivery log, which the API lists
// and replays. It does not produce events; messages, delivery, tracking,
// bounce processing and the portal write them.
package webhooks

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Event types an endpoint may subscribe to: the message_events types worth
// telling a customer about. The producers own the names (packages
// messages, delivery, bounce, tracking and portal); these mirror them.
const (
	EventQueued       = "queued"
	EventScheduled    = "scheduled"
	EventRescheduled  = "rescheduled"
	EventQuarantined  = "quarantined"
	EventDelivered    = "delivered"
	EventDeferred     = "deferred"
	EventBounced      = "bounced"
	EventSuppressed   = "suppressed"
	EventFailed       = "failed"
	EventCancelled    = "cancelled"
	EventOpened       = "opened"
	EventClicked      = "clicked"
	EventUnsubscribed = "unsubscribed"
	EventComplained   = "complained"
	// EventPing is the type of test deliveries; it cannot be subscribed.
	EventPing = "ping"
)

// Portal event types (package portal): what the recipient and the sender
// did with a message's portal copy. Their details never hold content,
// codes or answers.
const (
	EventPortalDeposited   = "portal_deposited"
	EventPortalNotified    = "portal_notified"
	EventPortalCodeSent    = "portal_code_sent"
	EventPortalCodeFailed  = "portal_code_failed"
	EventPortalLocked      = "portal_locked"
	EventPortalSignedIn    = "portal_signed_in"
	EventPortalViewed      = "portal_viewed"
	EventPortalDownloaded  = "portal_downloaded"
	EventPortalReplied     = "portal_replied"
	EventPortalSignedOut   = "portal_signed_out"
	EventPortalIdleTimeout = "portal_idle_timeout"
	EventPortalRecalled    = "portal_recalled"
	EventPortalExpired     = "portal_expired"
)

// EventTypes lists the subscribable event types. A quarantined recipient
// that is released gets a queued event (or, for the portal, the portal
// deposit's events and delivered), one that is rejected a failed event,
// each with details.reason saying so.
func EventTypes() []string {
	return []string{EventQueued, EventScheduled, EventRescheduled, EventQuarantined, EventDelivered, EventDeferred, EventBounced,
		EventSuppressed, EventFailed, EventCancelled, EventOpened, EventClicked, EventUnsubscribed, EventComplained,
		EventPortalDeposited, EventPortalNotified, EventPortalCodeSent, EventPortalCodeFailed, EventPortalLocked, EventPortalSignedIn,
		EventPortalViewed, EventPortalDownloaded, EventPortalReplied, EventPortalSignedOut, EventPortalIdleTimeout,
		EventPortalRecalled, EventPortalExpired}
}

// Delivery statuses.
const (
	StatusPending   = "pending"   // not attempted yet
	StatusRetrying  = "retrying"  // an attempt failed; another is scheduled
	StatusSucceeded = "succeeded" // the endpoint answered 2xx
	StatusFailed    = "failed"    // gave up (attempts or retry window exhausted)
)

// Limits.
const (
	MaxURLLength      = 2048
	MaxWebhooks       = 20 // per account
	MaxPreviousSecret = 7 * 24 * time.Hour
)

// Defaults of zero Options fields.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultRetryWindow    = 24 * time.Hour
	DefaultMaxAttempts    = 30
	DefaultFirstRetry     = 30 * time.Second
	DefaultMaxBackoff     = time.Hour
	DefaultConcurrency    = 8
	DefaultBatchSize      = 100
	DefaultFanOutBatch    = 5000
	DefaultPostgresSettle = 5 * time.Second
	// DefaultPreviousSecretTTL is how long the previous secret keeps
	// signing after a rotation unless the caller says otherwise.
	DefaultPreviousSecretTTL = 24 * time.Hour
)

// Errors callers branch on.
var (
	// ErrBusy: the delivery is being attempted right now.
	ErrBusy = errors.New("webhooks: the delivery is being attempted right now")
	// ErrBadCursor: the cursor is not one Deliveries returned.
	ErrBadCursor = errors.New("webhooks: invalid cursor")
	// ErrTooMany: the account has MaxWebhooks endpoints already.
	ErrTooMany = errors.New("webhooks: too many webhooks in this account")
	// ErrDestination: the endpoint's address is not allowed (private,
	// loopback, link-local ... without AllowPrivateNetworks).
	ErrDestination = errors.New("webhooks: destination address not allowed")
)

// FieldError is a validation failure of one request field. Message names
// the rule, never the offending value.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return "webhooks: " + e.Field + ": " + e.Message }

// Webhook is an endpoint. Its secret is never part of it: Create and
// RotateSecret return it once.
type Webhook struct {
	ID                  string
	AccountID           string
	URL                 string
	Events              []string
	Enabled             bool
	CreatedAt           time.Time
	UpdatedAt           time.Time
	PreviousSecretUntil time.Time // zero when no previous secret signs
}

// WithSecret is a webhook and its signing secret, shown once.
type WithSecret struct {
	Webhook
	Secret string
}

// Spec creates a webhook.
type Spec struct {
	URL     string
	Events  []string
	Enabled *bool // nil means true
}

// Change updates a webhook; nil fields stay as they are.
type Change struct {
	URL     *string
	Events  *[]string
	Enabled *bool
}

// Options configure the service.
type Options struct {
	// AllowHTTP permits http:// endpoint URLs (development and tests).
	AllowHTTP bool
	// AllowPrivateNetworks permits destinations in loopback, private,
	// link-local and other non-public ranges (development and tests).
	AllowPrivateNetworks bool
	// Timeout bounds one POST, connection included (default 10s).
	Timeout time.Duration
	// RetryWindow is how long an event is retried (default 24h).
	RetryWindow time.Duration
	// MaxAttempts bounds the attempts of one event (default 30).
	MaxAttempts int
	// FirstRetry is the first backoff, doubled per attempt up to MaxBackoff
	// (defaults 30s and 1h).
	FirstRetry time.Duration
	MaxBackoff time.Duration
	// Concurrency bounds the POSTs in flight per dispatcher run (default 8).
	Concurrency int
	// BatchSize is how many due deliveries one claim takes (default 100).
	BatchSize int
	// Settle is how old an event must be before the dispatcher reads it,
	// so that a transaction that took its event id earlier but commits
	// later is not skipped by the cursor. Zero means 0 on SQLite (one
	// writer: commits are serial, and the fan-out holds the writer) and
	// DefaultPostgresSettle on PostgreSQL; negative means none (tests).
	Settle time.Duration
	// RootCAs verify endpoints' certificates (nil: the system's).
	RootCAs *x509.CertPool
	// Logger gets operational logs, never payloads, URLs or secrets.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now); Jitter returns a factor in
	// [0.8, 1.2) applied to each backoff (default random).
	Now    func() time.Time
	Jitter func() float64
}

func (o *Options) defaults(d store.Dialect) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RetryWindow <= 0 {
		o.RetryWindow = DefaultRetryWindow
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = DefaultFirstRetry
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	switch {
	case o.Settle < 0:
		o.Settle = 0
	case o.Settle == 0 && d == store.Postgres:
		o.Settle = DefaultPostgresSettle
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = randomJitter
	}
}

// Service manages webhooks and delivers their events. Safe for
// concurrent use.
type Service struct {
	db      *store.Store
	vault   *vault.Vault
	log     *audit.Log
	opts    Options
	sender  *sender
	metrics *metrics
}

// New returns the service.
func New(db *store.Store, v *vault.Vault, log *audit.Log, opts Options) (*Service, error) {
	opts.defaults(db.Dialect())
	m, err := newMetrics(db, opts)
	if err != nil {
		return nil, err
	}
	return &Service{db: db, vault: v, log: log, opts: opts, sender: newSender(opts), metrics: m}, nil
}

// validateURL checks an endpoint URL: absolute https (http only with
// AllowHTTP), a host, no credentials or fragment, and, for a literal IP
// address, a public one (unless AllowPrivateNetworks). Host names are
// checked again at every connection, after resolution.
func (s *Service) validateURL(raw string) (string, error) {
	bad := func(msg string) (string, error) { return "", &FieldError{Field: "url", Message: msg} }
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return bad("required")
	}
	if len(raw) > MaxURLLength {
		return bad(fmt.Sprintf("at most %d characters", MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return bad("must be an absolute URL such as https://hooks.example.org/sealpost")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !s.opts.AllowHTTP {
			return bad("must use https")
		}
	default:
		return bad("must use https")
	}
	if u.User != nil {
		return bad("must not carry credentials; verify the Sealpost-Signature header instead")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("must not have a fragment")
	}
	host := u.Hostname()
	if host == "" || strings.ContainsAny(host, " %") {
		return bad("must name a host")
	}
	if addr, err := netip.ParseAddr(host); err == nil && !s.opts.AllowPrivateNetworks && !publicAddr(addr) {
		return bad("must not point at a private, loopback or link-local address")
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		if !s.opts.AllowPrivateNetworks {
			return bad("must not point at a private, loopback or link-local address")
		}
	}
	return u.String(), nil
}

// validateEvents checks and normalises a subscription list: at least one
// known type, no duplicates, sorted.
func validateEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, &FieldError{Field: "events", Message: "at least one event type"}
	}
	known := EventTypes()
	out := make([]string, 0, len(events))
	for i, e := range events {
		if !slices.Contains(known, e) {
			return nil, &FieldError{Field: fmt.Sprintf("events[%d]", i), Message: "unknown event type; one of " + strings.Join(known, ", ")}
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out, nil
}

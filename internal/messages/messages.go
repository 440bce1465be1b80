// Package messages accepts messages for delivery and reports on them:
// validation and composition (package mail), the sender-domain check,
// the SecureLine step (DLP scan, policy, encryption decision per
// recipient, quarantine and portal deposit: secureline.go), suppression,
// sealing of the composed message, and the durable insert of
// the message, one row per recipient and the delivery jobs in one
// transaction, so an accepted message is never lost. Idempotency keys
// make retried requests safe.
package messages

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Limits of one message.
const (
	MaxRecipients    = 100      // to + cc + bcc
	MaxMessageBytes  = 25 << 20 // composed, attachments included
	MaxScheduleAhead = 30 * 24 * time.Hour
)

// Errors callers branch on (validation errors are *mail.FieldError).
var (
	ErrIdempotencyConflict = errors.New("messages: the Idempotency-Key was used with a different request")
	ErrTooLarge            = errors.New("messages: the composed message is larger than 25 MiB")
)

// Kinds of message.
const (
	KindTransactional = "transactional"
	KindMarketing     = "marketing"
)

// Recipient states.
const (
	StateScheduled  = "scheduled"
	StateQueued     = "queued"
	StateDeferred   = "deferred"
	StateDelivered  = "delivered"
	StateBounced    = "bounced"
	StateSuppressed = "suppressed"
	StateFailed     = "failed"
	StateCancelled  = "cancelled"
)

// Attachment is a file to attach.
type Attachment struct {
	Filename    string
	ContentType string
	Content     []byte
	ContentID   string
}

// Request is one message to send.
type Request struct {
	From        string
	To, Cc, Bcc []string
	ReplyTo     []string
	Subject     string
	Text, HTML  string
	Headers     map[string]string
	Attachments []Attachment
	Tags        []string
	Metadata    map[string]string
	Kind        string // transactional (default) or marketing
	SendAt      time.Time
	Encryption  string // recorded now; SecureLine acts on it
	Tracking    Tracking
	// Template names a stored template (package templates) whose version
	// TemplateVersion (0: the active one) gives the subject and bodies,
	// rendered with TemplateData; RecipientData, keyed by recipient
	// address, is merged over it for that recipient (see templates.go).
	Template        string
	TemplateVersion int
	TemplateData    map[string]any
	RecipientData   map[string]map[string]any
}

// Tracking options of a message.
type Tracking struct {
	Opens  *bool `json:"opens,omitempty"`
	Clicks *bool `json:"clicks,omitempty"`
}

// Accepted describes an accepted message.
type Accepted struct {
	ID         string              `json:"id"`
	MessageID  string              `json:"message_id"`
	SendAt     time.Time           `json:"send_at"`
	Recipients []AcceptedRecipient `json:"recipients"`
}

// AcceptedRecipient is a recipient's state at acceptance.
type AcceptedRecipient struct {
	Address string `json:"address"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
}

// Options configure the service.
type Options struct {
	// Lifetime is how long delivery keeps trying before it bounces.
	Lifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Templates are the stored templates sends may name (nil: none).
	Templates Templates
	// Tracker instruments messages for tracking and one-click
	// unsubscribe (nil: none).
	Tracker Tracker
	// SecureLine scans, applies the DLP policy and decides each
	// recipient's encryption at acceptance (secureline.go); nil: none.
	SecureLine *SecureLine
}

// Service accepts and reports on messages.
type Service struct {
	db      *store.Store
	vault   *vault.Vault
	domains *domains.Service
	queue   *queue.Queue
	opts    Options
}

// New returns the service.
func New(db *store.Store, v *vault.Vault, d *domains.Service, q *queue.Queue, opts Options) *Service {
	if opts.Lifetime <= 0 {
		opts.Lifetime = 72 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{db: db, vault: v, domains: d, queue: q, opts: opts}
}

// prepared is a validated, composed and sealed message ready to insert.
type prepared struct {
	id         string
	headerID   string
	from       mail.Address
	recipients []recipient
	sealed     []byte
	size       int
	utf8       bool
	kind       string
	tags       string
	metadata   string
	options    string
	sendAt     time.Time
	draft      mail.Draft // the message's; draftFor derives recipients' from it
	personal   *personal  // nil without a template

	// tracking instruments recipients' bodies (nil without tracking).
	tracking MessageTracker
	// screen is the SecureLine outcome (nil without SecureLine).
	screen *screened
	// portalRaw is a relayed message as stored, for portal deposits.
	portalRaw []byte
}

type recipient struct {
	addr      mail.Address
	kind      string
	kindIndex int         // position in its list (to, cc or bcc)
	sealed    []byte      // its own composed body, when ownBodies
	draft     *mail.Draft // its own draft, when ownBodies
}

// BodyAD is the associated data sealing a message's composed body: it
// binds the ciphertext to its account and message.
func BodyAD(accountID, id string) []byte { return []byte("messages/" + accountID + "/" + id + "/body") }

// prepare validates and composes req for the actor's account.
func (s *Service) prepare(ctx context.Context, actor account.Actor, req Request, cache *requestCache) (prepared, error) {
	p := prepared{id: store.NewID(), kind: req.Kind}
	if p.kind == "" {
		p.kind = KindTransactional
	}
	if p.kind != KindTransactional && p.kind != KindMarketing {
		return prepared{}, &mail.FieldError{Field: "kind", Message: "must be transactional or marketing"}
	}
	var err error
	if p.from, err = mail.ParseAddress("from", req.From); err != nil {
		return prepared{}, err
	}
	d := mail.Draft{From: p.from, Subject: req.Subject, Text: req.Text, HTML: req.HTML}
	for _, list := range []struct {
		field string
		in    []string
		out   *[]mail.Address
		kind  string
	}{{"to", req.To, &d.To, "to"}, {"cc", req.Cc, &d.Cc, "cc"}, {"bcc", req.Bcc, nil, "bcc"}, {"reply_to", req.ReplyTo, &d.ReplyTo, ""}} {
		for i, raw := range list.in {
			a, err := mail.ParseAddress(fmt.Sprintf("%s[%d]", list.field, i), raw)
			if err != nil {
				return prepared{}, err
			}
			if list.out != nil {
				*list.out = append(*list.out, a)
			}
			if list.kind != "" {
				p.recipients = append(p.recipients, recipient{addr: a, kind: list.kind, kindIndex: i})
			}
		}
	}
	if len(p.recipients) == 0 {
		return prepared{}, &mail.FieldError{Field: "to", Message: "at least one recipient (to, cc or bcc) is required"}
	}
	if len(p.recipients) > MaxRecipients {
		return prepared{}, &mail.FieldError{Field: "to", Message: fmt.Sprintf("at most %d recipients (to, cc and bcc together)", MaxRecipients)}
	}
	for _, name := range sortedKeys(req.Headers) {
		d.Headers = append(d.Headers, mail.Header{Name: name, Value: req.Headers[name]})
	}
	for _, a := range req.Attachments {
		d.Attachments = append(d.Attachments, mail.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content, ContentID: a.ContentID})
	}
	if err := validateTagsAndMetadata(req.Tags, req.Metadata); err != nil {
		return prepared{}, err
	}
	now := s.opts.Now()
	p.sendAt = now
	if !req.SendAt.IsZero() {
		if req.SendAt.After(now.Add(MaxScheduleAhead)) {
			return prepared{}, &mail.FieldError{Field: "send_at", Message: "at most 30 days ahead"}
		}
		if req.SendAt.After(now) {
			p.sendAt = req.SendAt
		}
	}
	d.Date = p.sendAt
	if p.personal, err = s.applyTemplate(ctx, actor.Principal.AccountID, req, p.recipients, &d); err != nil {
		return prepared{}, err
	}
	raw, headerID, err := mail.Build(d)
	if err != nil {
		return prepared{}, err
	}
	if len(raw) > MaxMessageBytes {
		return prepared{}, ErrTooLarge
	}
	if _, err := s.domains.SigningKeys(ctx, actor.Principal.AccountID, p.from.Domain); err != nil {
		if errors.Is(err, domains.ErrUnverified) {
			return prepared{}, &mail.FieldError{Field: "from", Message: "the sender's domain is not a verified sending domain of this account"}
		}
		return prepared{}, err
	}
	p.headerID, p.size = headerID, len(raw)
	p.utf8 = p.from.UTF8
	for _, r := range p.recipients {
		p.utf8 = p.utf8 || r.addr.UTF8
	}
	if p.sealed, err = s.vault.Seal(ctx, actor.Principal.AccountID, raw, BodyAD(actor.Principal.AccountID, p.id)); err != nil {
		return prepared{}, err
	}
	p.draft = d
	if err := s.beginTracking(ctx, actor.Principal.AccountID, &p, req.Tracking); err != nil {
		return prepared{}, err
	}
	if err := s.sealRecipientBodies(ctx, actor.Principal.AccountID, &p); err != nil {
		return prepared{}, err
	}
	if p.tracking != nil {
		if err := p.tracking.Seal(ctx); err != nil {
			return prepared{}, err
		}
	}
	if err := s.screenRequest(ctx, actor, req, &p, cache); err != nil {
		return prepared{}, err
	}
	tags, _ := json.Marshal(nonNil(req.Tags))
	meta, _ := json.Marshal(nonNilMap(req.Metadata))
	opts, _ := json.Marshal(struct {
		Encryption string   `json:"encryption,omitempty"`
		Tracking   Tracking `json:"tracking"`
	}{req.Encryption, req.Tracking})
	p.tags, p.metadata, p.options = string(tags), string(meta), string(opts)
	return p, nil
}

func validateTagsAndMetadata(tags []string, meta map[string]string) error {
	if len(tags) > 10 {
		return &mail.FieldError{Field: "tags", Message: "at most 10 tags"}
	}
	for i, t := range tags {
		if t == "" || len(t) > 100 || strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return &mail.FieldError{Field: fmt.Sprintf("tags[%d]", i), Message: "1 to 100 printable characters"}
		}
	}
	if len(meta) > 20 {
		return &mail.FieldError{Field: "metadata", Message: "at most 20 keys"}
	}
	for k, v := range meta {
		if k == "" || len(k) > 100 || len(v) > 1000 {
			return &mail.FieldError{Field: "metadata", Message: "keys of 1 to 100 characters, values of at most 1,000"}
		}
	}
	return nil
}

// Send accepts one message. With an idempotency key, a retry of the same
// request within 24 hours returns the first result; a different request
// under the same key is ErrIdempotencyConflict.
func (s *Service) Send(ctx context.Context, actor account.Actor, req Request, idempotencyKey string) (Accepted, error) {
	hash := requestHash(req)
	if idempotencyKey != "" {
		if prior, ok, err := s.idempotent(ctx, actor.Principal.AccountID, idempotencyKey, hash); err != nil || ok {
			return prior, err
		}
	}
	p, err := s.prepare(ctx, actor, req, &requestCache{})
	if err != nil {
		return Accepted{}, err
	}
	var out Accepted
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		var err error
		jobs := domainJobs{}
		if out, err = s.insert(ctx, tx, actor, p, jobs); err != nil {
			return err
		}
		if err := jobs.insert(ctx, s.queue, tx); err != nil {
			return err
		}
		if idempotencyKey != "" {
			return s.remember(ctx, tx, actor.Principal.AccountID, idempotencyKey, hash, out)
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) && idempotencyKey != "" {
		// A concurrent request with the same key won the race.
		prior, ok, perr := s.idempotent(ctx, actor.Principal.AccountID, idempotencyKey, hash)
		if perr == nil && ok {
			return prior, nil
		}
		return Accepted{}, errors.Join(err, perr)
	}
	return out, err
}

// BatchResult is the outcome of one message of a batch.
type BatchResult struct {
	Accepted *Accepted
	Err      error
}

// MaxBatch is the most messages one batch request may carry.
const MaxBatch = 1000

// SendBatch accepts up to MaxBatch messages: each is validated on its own
// (a bad one does not spoil the rest) and all valid ones are committed in
// one transaction (group commit).
func (s *Service) SendBatch(ctx context.Context, actor account.Actor, reqs []Request) ([]BatchResult, error) {
	out := make([]BatchResult, len(reqs))
	ready := make([]prepared, 0, len(reqs))
	index := make([]int, 0, len(reqs))
	cache := &requestCache{} // one account: its settings and rules are read once
	for i, req := range reqs {
		p, err := s.prepare(ctx, actor, req, cache)
		if err != nil {
			if !errors.Is(err, mail.ErrInvalid) && !errors.Is(err, ErrTooLarge) && !isTemplateRefusal(err) &&
				!errors.Is(err, ErrBlocked) && !errors.Is(err, ErrEncryptionUnavailable) {
				return nil, err
			}
			out[i].Err = err
			continue
		}
		ready, index = append(ready, p), append(index, i)
	}
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		jobs := domainJobs{}
		for j, p := range ready {
			acc, err := s.insert(ctx, tx, actor, p, jobs)
			if err != nil {
				return err
			}
			out[index[j]].Accepted = &acc
		}
		return jobs.insert(ctx, s.queue, tx)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// insert writes a prepared message and its recipients (suppressed ones
// marked so), and adds the destination domains' delivery jobs to jobs
// for the caller to insert once per transaction.
func (s *Service) insert(ctx context.Context, tx store.Tx, actor account.Actor, p prepared, jobs domainJobs) (Accepted, error) {
	accountID := actor.Principal.AccountID
	now := s.opts.Now().UTC()
	_, err := tx.Exec(ctx, `INSERT INTO messages (id, account_id, actor_kind, actor_id, from_addr, from_domain, header_id, kind, tags,
		metadata, options, body_sealed, size, smtputf8, send_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		p.id, accountID, string(actor.Principal.ActorKind), actor.Principal.ActorID, p.from.Addr(), p.from.Domain, p.headerID, p.kind,
		p.tags, p.metadata, p.options, p.sealed, p.size, p.utf8, store.Micros(p.sendAt), store.Micros(now))
	if err != nil {
		return Accepted{}, fmt.Errorf("store message: %w", err)
	}
	priority := 1
	if p.kind == KindMarketing {
		priority = 2
	}
	if p.tracking != nil {
		if err := p.tracking.Insert(ctx, tx); err != nil {
			return Accepted{}, err
		}
	}
	out := Accepted{ID: p.id, MessageID: p.headerID, SendAt: p.sendAt.UTC()}
	for i, r := range p.recipients {
		state := StateQueued
		if p.sendAt.After(now) {
			state = StateScheduled
		}
		// An unsubscribe stops marketing only: a patient who leaves the
		// newsletter still gets reminders and results.
		var suppressed bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions WHERE account_id = $1 AND address = $2
			AND (reason <> $3 OR $4 = $5))`, accountID, strings.ToLower(r.addr.Addr()), ReasonUnsubscribe, p.kind, KindMarketing).Scan(&suppressed); err != nil {
			return Accepted{}, err
		}
		if suppressed {
			state = StateSuppressed
		}
		if _, err := tx.Exec(ctx, `INSERT INTO message_recipients (message_id, rcpt_index, account_id, address, domain, kind, state,
			priority, next_attempt_at, expires_at, updated_at, body_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			p.id, i, accountID, r.addr.Addr(), r.addr.Domain, r.kind, dbState(state), priority, store.Micros(p.sendAt),
			store.Micros(p.sendAt.Add(s.opts.Lifetime)), store.Micros(now), nullBytes(r.sealed)); err != nil {
			return Accepted{}, fmt.Errorf("store recipient: %w", err)
		}
		if err := recordEvent(ctx, tx, accountID, p.id, i, state, now, nil); err != nil {
			return Accepted{}, err
		}
		if state, err = s.applyScreen(ctx, tx, actor, &p, i, state); err != nil {
			return Accepted{}, err
		}
		out.Recipients = append(out.Recipients, AcceptedRecipient{Address: r.addr.Addr(), Kind: r.kind, State: state})
		// Scheduled recipients get no job now: the periodic scan starts
		// their domain's job once they are due.
		if state == StateQueued {
			jobs.add(r.addr.Domain, priority)
		}
	}
	return out, nil
}

// dbState maps an API state to the stored one: a scheduled recipient is
// queued with a future next attempt.
func dbState(state string) string {
	if state == StateScheduled {
		return StateQueued
	}
	return state
}

// recordEvent appends a status event for a recipient.
func recordEvent(ctx context.Context, q store.Querier, accountID, messageID string, rcpt int, typ string, at time.Time, details map[string]string) error {
	b, _ := json.Marshal(nonNilMap(details))
	_, err := q.Exec(ctx, `INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, store.NewID(), accountID, messageID, rcpt, typ, store.Micros(at), string(b))
	if err != nil {
		return fmt.Errorf("record message event: %w", err)
	}
	return nil
}

func requestHash(req Request) []byte {
	b, _ := json.Marshal(req)
	h := sha256.Sum256(b)
	return h[:]
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

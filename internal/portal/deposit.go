package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
)

// Challenge kinds a sender may add to the one-time code.
const (
	ChallengePassphrase = "passphrase"
	ChallengeDOB        = "dob" // date of birth, YYYY-MM-DD
)

// Challenge is a second secret the sender shares with the recipient out
// of band. Only its argon2id hash is stored.
type Challenge struct {
	Kind   string // ChallengePassphrase or ChallengeDOB
	Answer string
	// Hint is shown on the code page ("the passphrase we gave you at the
	// front desk"); it must not itself be a secret or PHI.
	Hint string
}

// Deposit is one message for one recipient to read in the portal.
type Deposit struct {
	AccountID string
	// MessageID and RcptIndex name the message and recipient this portal
	// copy delivers (their message_events get the portal's events). An
	// empty MessageID (an API deposit) ties the portal message to the
	// notice's message once it is accepted.
	MessageID string
	RcptIndex int
	Recipient string // the address the notice and codes go to
	Sender    string // "Name <addr>" or addr: the notice's From, the replies' To
	// Content is the message; alternatively Raw holds it as RFC 5322
	// (parsed with ParseRaw).
	Content Content
	Raw     []byte
	// Challenge, when set, is asked for together with the code.
	Challenge *Challenge
	// Actor is who deposits (audit); the zero value is the system.
	Actor Actor
}

// Deposited describes a stored portal message.
type Deposited struct {
	ID        string
	ExpiresAt time.Time
}

// NotifyArgs is the job that sends a deposit's notice. It carries only
// ids; the link token waits sealed in the portal message's row.
type NotifyArgs struct {
	AccountID string `json:"account_id"`
	ID        string `json:"id"`
}

// Kind implements river.JobArgs.
func (NotifyArgs) Kind() string { return "portal.notify" }

// Deposit validates, seals and stores d and queues its notice, in one
// transaction of its own.
func (s *Service) Deposit(ctx context.Context, d Deposit) (Deposited, error) {
	p, err := s.prepare(ctx, d)
	if err != nil {
		return Deposited{}, err
	}
	err = s.db.InTx(ctx, func(tx store.Tx) error { return s.insert(ctx, tx, p) })
	if err != nil {
		return Deposited{}, err
	}
	return Deposited{ID: p.id, ExpiresAt: p.expires}, nil
}

// DepositTx is Deposit inside the caller's transaction (delivery's, when
// SecureLine sends a recipient to the portal): the portal message and its
// notice job commit or roll back with it. The account must already have
// its data key (accounts get one at birth): on SQLite, creating one
// inside a transaction would wait for the transaction's own lock.
func (s *Service) DepositTx(ctx context.Context, tx store.Tx, d Deposit) (Deposited, error) {
	p, err := s.prepare(ctx, d)
	if err != nil {
		return Deposited{}, err
	}
	if err := s.insert(ctx, tx, p); err != nil {
		return Deposited{}, err
	}
	return Deposited{ID: p.id, ExpiresAt: p.expires}, nil
}

type preparedDeposit struct {
	Deposit
	id                      string
	recipient, sender       string
	tokenHash               []byte
	sealed, notice          []byte
	size, attachments       int
	challengeKind, chalHash string
	chalHint                string
	created, expires        time.Time
}

var dobPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// prepare validates d, then seals its content and its link token
// (outside any transaction: sealing may read the account's key).
func (s *Service) prepare(ctx context.Context, d Deposit) (preparedDeposit, error) {
	p := preparedDeposit{Deposit: d, id: store.NewID()}
	if !s.Enabled() {
		return p, ErrNotConfigured
	}
	if d.AccountID == "" {
		return p, &FieldError{Field: "account_id", Message: "required"}
	}
	rcpt, err := mail.ParseAddress(d.Recipient)
	if err != nil || !strings.Contains(rcpt.Address, "@") || strings.ContainsAny(d.Recipient, "\r\n") {
		return p, &FieldError{Field: "to", Message: "a single valid address"}
	}
	from, err := mail.ParseAddress(d.Sender)
	if err != nil || !strings.Contains(from.Address, "@") || strings.ContainsAny(d.Sender, "\r\n") {
		return p, &FieldError{Field: "from", Message: "a valid address"}
	}
	p.recipient, p.sender = rcpt.Address, from.String()
	if s.opts.SenderCheck != nil {
		_, domain, _ := strings.Cut(from.Address, "@")
		if err := s.opts.SenderCheck(ctx, d.AccountID, strings.ToLower(domain)); err != nil {
			return p, err
		}
	}
	content := d.Content
	if len(d.Raw) > 0 {
		if content, err = ParseRaw(d.Raw); err != nil {
			return p, err
		}
	}
	if err := content.validate(""); err != nil {
		return p, err
	}
	if c := d.Challenge; c != nil {
		if err := p.setChallenge(c); err != nil {
			return p, err
		}
	}
	plain, err := encodeContent(content)
	if err != nil {
		return p, err
	}
	p.size, p.attachments = content.size(), len(content.Attachments)
	if p.sealed, err = s.vault.Seal(ctx, d.AccountID, plain, ContentAD(d.AccountID, p.id)); err != nil {
		return p, err
	}
	token, hash, err := newToken()
	if err != nil {
		return p, err
	}
	p.tokenHash = hash
	if p.notice, err = s.vault.Seal(ctx, d.AccountID, []byte(token), noticeAD(d.AccountID, p.id)); err != nil {
		return p, err
	}
	// expires_at records what the notice announces; whether the content
	// is still readable is decided at each use by the policy then
	// (expiresAt), so a shortened period reaches stored messages too.
	p.created = s.now()
	if p.expires, err = s.expiresAt(ctx, d.AccountID, p.created); err != nil {
		return p, err
	}
	return p, nil
}

func (p *preparedDeposit) setChallenge(c *Challenge) error {
	answer := normalizeAnswer(c.Kind, c.Answer)
	switch c.Kind {
	case ChallengePassphrase:
		if len(answer) < 4 || len(answer) > 200 {
			return &FieldError{Field: "challenge.answer", Message: "a passphrase of 4 to 200 characters"}
		}
	case ChallengeDOB:
		if !dobPattern.MatchString(answer) {
			return &FieldError{Field: "challenge.answer", Message: "a date of birth as YYYY-MM-DD"}
		}
		if _, err := time.Parse(time.DateOnly, answer); err != nil {
			return &FieldError{Field: "challenge.answer", Message: "a date of birth as YYYY-MM-DD"}
		}
	default:
		return &FieldError{Field: "challenge.kind", Message: "passphrase or dob"}
	}
	if len(c.Hint) > 200 || strings.ContainsFunc(c.Hint, func(r rune) bool { return r < 0x20 }) {
		return &FieldError{Field: "challenge.hint", Message: "at most 200 printable characters"}
	}
	hash, err := auth.HashPassword(answer)
	if err != nil {
		return err
	}
	p.challengeKind, p.chalHash, p.chalHint = c.Kind, hash, c.Hint
	return nil
}

// normalizeAnswer forgives what people type differently: surrounding
// space and letter case of passphrases.
func normalizeAnswer(kind, answer string) string {
	answer = strings.TrimSpace(answer)
	if kind == ChallengePassphrase {
		return strings.ToLower(strings.Join(strings.Fields(answer), " "))
	}
	return answer
}

func (s *Service) insert(ctx context.Context, tx store.Tx, p preparedDeposit) error {
	_, err := tx.Exec(ctx, `INSERT INTO portal_messages (id, account_id, message_id, rcpt_index, recipient, sender, token_hash,
		content_sealed, attachments, size, challenge_kind, challenge_hash, challenge_hint, notify_sealed, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		p.id, p.AccountID, p.MessageID, p.RcptIndex, p.recipient, p.sender, p.tokenHash, p.sealed, p.attachments, p.size,
		p.challengeKind, p.chalHash, p.chalHint, p.notice, store.Micros(p.created), store.Micros(p.expires))
	if err != nil {
		return fmt.Errorf("store portal message: %w", err)
	}
	details, _ := json.Marshal(map[string]any{"portal_message_id": p.id, "attachments": p.attachments})
	if err := event(ctx, tx, p.AccountID, p.MessageID, p.RcptIndex, EventDeposited, p.created, string(details)); err != nil {
		return err
	}
	actor := p.Actor
	if actor.Kind == "" {
		actor = Actor{Kind: string(auth.ActorSystem), ID: "portal"}
	}
	if err := s.auditTx(ctx, tx, p.AccountID, actor, "portal.deposited", p.id, "success",
		map[string]string{"challenge": p.challengeKind}); err != nil {
		return err
	}
	if _, err := s.queue.InsertTx(ctx, tx, NotifyArgs{AccountID: p.AccountID, ID: p.id}, &queue.InsertOpts{MaxAttempts: 10}); err != nil {
		return err
	}
	return nil
}

// newToken returns a link token (256 random bits, base64url) and the
// SHA-256 stored in its place. A fast hash suffices for a random secret
// of that strength.
func newToken() (string, []byte, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, err
	}
	t := base64.RawURLEncoding.EncodeToString(raw[:])
	return t, hashToken(t), nil
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// NotifyWorker sends deposits' notices.
type NotifyWorker struct {
	river.WorkerDefaults[NotifyArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *NotifyWorker) Work(ctx context.Context, job *river.Job[NotifyArgs]) error {
	return w.Service.sendNotice(ctx, job.Args.AccountID, job.Args.ID)
}

// sendNotice sends the "you have a secure message" notice of a deposit
// once: the idempotency key makes a retry after a crash return the first
// notice rather than send another, and the sealed token is dropped when
// done.
func (s *Service) sendNotice(ctx context.Context, accountID, id string) error {
	var sealed []byte
	var messageID, recipient, sender string
	var rcpt int
	err := s.db.Reader().QueryRow(ctx, `SELECT notify_sealed, message_id, rcpt_index, recipient, sender FROM portal_messages
		WHERE account_id = $1 AND id = $2 AND recalled_at IS NULL AND shredded_at IS NULL`, accountID, id).
		Scan(&sealed, &messageID, &rcpt, &recipient, &sender)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sealed == nil) {
		return nil // recalled, expired or already notified
	}
	if err != nil {
		return fmt.Errorf("load portal message %s: %w", id, err)
	}
	token, err := s.vault.Open(ctx, accountID, sealed, noticeAD(accountID, id))
	if err != nil {
		return err
	}
	b, err := s.branding(ctx, accountID)
	if err != nil {
		return err
	}
	lifetime, err := s.lifetime(ctx, accountID)
	if err != nil {
		return err
	}
	n := linkNotice(b.Name, s.opts.BaseURL+"/p/"+string(token), lifetime)
	n.AccountID, n.PortalID, n.Purpose = accountID, id, PurposeLink
	n.From, n.To = fromWithName(sender, b.Name), recipient
	n.IdempotencyKey = "portal-notice-" + id
	carrier, err := s.notify.Notify(ctx, n)
	if err != nil {
		return fmt.Errorf("send portal notice %s: %w", id, err)
	}
	now := s.now()
	return s.db.InTx(ctx, func(tx store.Tx) error {
		if messageID == "" {
			messageID, rcpt = carrier, 0
		}
		if _, err := tx.Exec(ctx, `UPDATE portal_messages SET notify_sealed = NULL, notified_at = $1, message_id = $2, rcpt_index = $3
			WHERE account_id = $4 AND id = $5`, store.Micros(now), messageID, rcpt, accountID, id); err != nil {
			return fmt.Errorf("mark portal notice sent: %w", err)
		}
		details, _ := json.Marshal(map[string]string{"portal_message_id": id, "notice_message_id": carrier})
		return event(ctx, tx, accountID, messageID, rcpt, EventNotified, now, string(details))
	})
}

// fromWithName gives the sender address the account's display name, so
// the notice reads "From: Clinic <reminders@clinic.example>".
func fromWithName(sender, name string) string {
	a, err := mail.ParseAddress(sender)
	if err != nil {
		return sender
	}
	if name != "" {
		a.Name = name
	}
	return a.String()
}

package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
)

// content opens a session's message content.
func (s *Service) content(ctx context.Context, sess Session) (Content, error) {
	var sealed []byte
	err := s.db.Reader().QueryRow(ctx, "SELECT content_sealed FROM portal_messages WHERE account_id = $1 AND id = $2",
		sess.AccountID, sess.PortalID).Scan(&sealed)
	if err != nil {
		return Content{}, fmt.Errorf("load portal content: %w", err)
	}
	if sealed == nil {
		return Content{}, ErrExpired
	}
	plain, err := s.vault.Open(ctx, sess.AccountID, sealed, ContentAD(sess.AccountID, sess.PortalID))
	if err != nil {
		return Content{}, err
	}
	return decodeContent(plain)
}

// Read returns the message for display and records the view.
func (s *Service) Read(ctx context.Context, sess Session, c Client) (Content, error) {
	content, err := s.content(ctx, sess)
	if err != nil {
		return Content{}, err
	}
	now := s.now()
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE portal_messages SET first_viewed_at = $1 WHERE account_id = $2 AND id = $3
			AND first_viewed_at IS NULL`, store.Micros(now), sess.AccountID, sess.PortalID); err != nil {
			return err
		}
		if err := event(ctx, tx, sess.AccountID, sess.MessageID, sess.RcptIndex, EventViewed, now, ""); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, sess.AccountID, recipientActor(sess.PortalID, c.SourceIP, c.RequestID), "portal.viewed",
			sess.PortalID, "success", map[string]string{"session": sess.ID})
	})
	return content, err
}

// Body returns the message's HTML body for the sandboxed frame, without
// recording a view (the page that frames it did).
func (s *Service) Body(ctx context.Context, sess Session) (string, error) {
	c, err := s.content(ctx, sess)
	return c.HTML, err
}

// Download returns attachment i and records the download. The event
// names the attachment by position and size only: a file name may itself
// be PHI.
func (s *Service) Download(ctx context.Context, sess Session, i int, c Client) (Attachment, error) {
	content, err := s.content(ctx, sess)
	if err != nil {
		return Attachment{}, err
	}
	if i < 0 || i >= len(content.Attachments) {
		return Attachment{}, ErrNotFound
	}
	a := content.Attachments[i]
	now := s.now()
	details, _ := json.Marshal(map[string]any{"attachment": i, "size": len(a.Content)})
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		if err := event(ctx, tx, sess.AccountID, sess.MessageID, sess.RcptIndex, EventDownloaded, now, string(details)); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, sess.AccountID, recipientActor(sess.PortalID, c.SourceIP, c.RequestID), "portal.downloaded",
			sess.PortalID, "success", map[string]string{"attachment": strconv.Itoa(i), "session": sess.ID})
	})
	return a, err
}

// Reply is a recipient's secure reply.
type Reply struct {
	Text       string
	Attachment *Attachment
}

// SendReply stores a reply sealed and forwards it to the original sender
// through the Notifier (PurposeReply: the messages pipeline, so the
// account's encryption policy protects it in transit like any message).
func (s *Service) SendReply(ctx context.Context, sess Session, r Reply, c Client) error {
	r.Text = strings.TrimSpace(r.Text)
	if r.Text == "" {
		return &FieldError{Field: "text", Message: "write a reply"}
	}
	if len(r.Text) > MaxReplyTextLength {
		return &FieldError{Field: "text", Message: fmt.Sprintf("at most %d characters", MaxReplyTextLength)}
	}
	reply := Content{Subject: "Reply", Text: r.Text}
	if r.Attachment != nil {
		reply.Attachments = []Attachment{*r.Attachment}
	}
	if err := reply.validate(""); err != nil {
		return err
	}
	if reply.size() > MaxReplyBytes {
		return &FieldError{Field: "attachment", Message: "at most 10 MiB"}
	}
	id := store.NewID()
	plain, _ := encodeContent(reply)
	sealed, err := s.vault.Seal(ctx, sess.AccountID, plain, replyAD(sess.AccountID, sess.PortalID, id))
	if err != nil {
		return err
	}
	now := s.now()
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO portal_replies (id, account_id, portal_message_id, body_sealed, attachments, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, sess.AccountID, sess.PortalID, sealed, len(reply.Attachments), store.Micros(now)); err != nil {
			return fmt.Errorf("store portal reply: %w", err)
		}
		details, _ := json.Marshal(map[string]any{"reply_id": id, "attachments": len(reply.Attachments)})
		if err := event(ctx, tx, sess.AccountID, sess.MessageID, sess.RcptIndex, EventReplied, now, string(details)); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, sess.AccountID, recipientActor(sess.PortalID, c.SourceIP, c.RequestID), "portal.replied",
			sess.PortalID, "success", map[string]string{"reply": id, "session": sess.ID})
	})
	if err != nil {
		return err
	}
	b, err := s.branding(ctx, sess.AccountID)
	if err != nil {
		return err
	}
	to := sess.Sender
	if a, err := mail.ParseAddress(sess.Sender); err == nil {
		to = a.Address
	}
	n := replyNotice(sess.Recipient, reply)
	n.AccountID, n.PortalID, n.Purpose = sess.AccountID, sess.PortalID, PurposeReply
	n.From, n.To, n.ReplyTo = fromWithName(sess.Sender, b.Name+" secure reply"), to, sess.Recipient
	n.IdempotencyKey = "portal-reply-" + id
	carrier, err := s.notify.Notify(ctx, n)
	if err != nil {
		return fmt.Errorf("forward portal reply: %w", err)
	}
	_, err = s.db.Writer().Exec(ctx, "UPDATE portal_replies SET forwarded_id = $1 WHERE account_id = $2 AND id = $3", carrier, sess.AccountID, id)
	return err
}

// Status is a portal message's state for the sender (API).
type Status struct {
	ID          string     `json:"id"`
	MessageID   string     `json:"message_id"`
	Recipient   string     `json:"recipient"`
	State       string     `json:"state"` // pending | notified | viewed | recalled | expired
	Attachments int        `json:"attachments"`
	Challenge   string     `json:"challenge"`
	Replies     int        `json:"replies"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"` // CreatedAt + the account's current portal period
	NotifiedAt  *time.Time `json:"notified_at"`
	FirstViewAt *time.Time `json:"first_viewed_at"`
	RecalledAt  *time.Time `json:"recalled_at"`
	Locked      bool       `json:"locked"`
	FailedCodes int        `json:"failed_codes"`
	ContentGone bool       `json:"content_shredded"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

// Get returns the status of one of an account's portal messages.
func (s *Service) Get(ctx context.Context, accountID, id string) (Status, error) {
	var st Status
	var created, locked int64
	var notified, viewed, recalled, shredded *int64
	err := s.db.Reader().QueryRow(ctx, `SELECT p.id, p.message_id, p.recipient, p.attachments, p.challenge_kind, p.created_at,
		p.notified_at, p.first_viewed_at, p.recalled_at, p.shredded_at, p.locked_until, p.failed_attempts,
		(SELECT count(*) FROM portal_replies r WHERE r.account_id = p.account_id AND r.portal_message_id = p.id)
		FROM portal_messages p WHERE p.account_id = $1 AND p.id = $2`, accountID, id).
		Scan(&st.ID, &st.MessageID, &st.Recipient, &st.Attachments, &st.Challenge, &created, &notified, &viewed, &recalled,
			&shredded, &locked, &st.FailedCodes, &st.Replies)
	if errors.Is(err, store.ErrNotFound) {
		return Status{}, ErrNotFound
	}
	if err != nil {
		return Status{}, fmt.Errorf("portal message status: %w", err)
	}
	opt := func(v *int64) *time.Time {
		if v == nil {
			return nil
		}
		t := store.FromMicros(*v).UTC()
		return &t
	}
	st.CreatedAt = store.FromMicros(created).UTC()
	if st.ExpiresAt, err = s.expiresAt(ctx, accountID, st.CreatedAt); err != nil {
		return Status{}, err
	}
	st.NotifiedAt, st.FirstViewAt, st.RecalledAt = opt(notified), opt(viewed), opt(recalled)
	now := s.now()
	if until := store.FromMicros(locked); now.Before(until) {
		st.Locked, st.LockedUntil = true, opt(&locked)
	}
	st.ContentGone = shredded != nil
	switch {
	case recalled != nil:
		st.State = "recalled"
	case shredded != nil || !now.Before(st.ExpiresAt):
		st.State = "expired"
	case viewed != nil:
		st.State = "viewed"
	case notified != nil:
		st.State = "notified"
	default:
		st.State = "pending"
	}
	return st, nil
}

// Recall withdraws a portal message: its link then shows "recalled", its
// sessions end and its content and replies are shredded. Recalling a
// recalled or expired message changes nothing (ErrNotFound only for an
// unknown id of this account).
func (s *Service) Recall(ctx context.Context, accountID, id string, actor Actor) (Status, error) {
	if _, err := s.Get(ctx, accountID, id); err != nil {
		return Status{}, err
	}
	if err := s.shred(ctx, accountID, id, EventRecalled, "portal.recalled", actor); err != nil {
		return Status{}, err
	}
	return s.Get(ctx, accountID, id)
}

// shred drops a portal message's content and replies (recall, or expiry
// found on access), ends its sessions, and records why, once.
func (s *Service) shred(ctx context.Context, accountID, id, eventType, action string, actor Actor) error {
	return s.db.InTx(ctx, func(tx store.Tx) error {
		_, err := shredTx(ctx, tx, s.audit, accountID, id, eventType, action, actor, s.now())
		return err
	})
}

// shredTx is shred in the caller's transaction; it reports whether it
// shredded (false: already shredded, and recorded then). The row keeps
// its metadata and events; the content (with its attachments), the
// pending notice's token, the code and the challenge's hash (a date of
// birth is guessable from it) go.
func shredTx(ctx context.Context, tx store.Tx, log *audit.Log, accountID, id, eventType, action string, actor Actor,
	at time.Time) (bool, error) {
	now := store.Micros(at)
	set := "shredded_at = $1"
	if eventType == EventRecalled {
		set += ", recalled_at = $1"
	}
	n, err := tx.Exec(ctx, `UPDATE portal_messages SET content_sealed = NULL, notify_sealed = NULL, code_hash = NULL, challenge_hash = '', `+
		set+` WHERE account_id = $2 AND id = $3 AND shredded_at IS NULL`, now, accountID, id)
	if err != nil {
		return false, fmt.Errorf("shred portal message: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, "UPDATE portal_replies SET body_sealed = NULL WHERE account_id = $1 AND portal_message_id = $2",
		accountID, id); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE portal_sessions SET revoked_at = $1 WHERE account_id = $2 AND portal_message_id = $3
		AND revoked_at IS NULL`, now, accountID, id); err != nil {
		return false, err
	}
	var messageID string
	var rcpt int
	if err := tx.QueryRow(ctx, "SELECT message_id, rcpt_index FROM portal_messages WHERE account_id = $1 AND id = $2",
		accountID, id).Scan(&messageID, &rcpt); err != nil {
		return false, err
	}
	if err := event(ctx, tx, accountID, messageID, rcpt, eventType, at, ""); err != nil {
		return false, err
	}
	if _, err := log.AppendTx(ctx, tx, auditEvent(accountID, actor, action, "portal_message/"+id, "success", nil)); err != nil {
		return false, err
	}
	return true, nil
}

// Sweep deletes sessions that ended a day ago and returns how many. The
// content of expired messages is the retention sweeper's (Expiry), which
// applies the account's current policy.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	cutoff := store.Micros(s.now().Add(-24 * time.Hour))
	n, err := s.db.Writer().Exec(ctx, `DELETE FROM portal_sessions WHERE expires_at < $1 OR revoked_at < $1 OR last_seen_at < $2`,
		cutoff, cutoff-int64(s.opts.IdleTimeout/time.Microsecond))
	if err != nil {
		return 0, fmt.Errorf("sweep portal sessions: %w", err)
	}
	return int(n), nil
}

// SweepInterval is how often the queue's leader runs Sweep.
const SweepInterval = 5 * time.Minute

// SweepArgs is the periodic sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "portal.sweep" }

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := w.Service.Sweep(ctx)
	return err
}

func auditEvent(accountID string, a Actor, action, target, outcome string, details map[string]string) audit.Event {
	return audit.Event{AccountID: accountID, ActorKind: a.Kind, ActorID: a.ID, Action: action, Target: target, Outcome: outcome,
		SourceIP: a.SourceIP, RequestID: a.RequestID, Details: details}
}

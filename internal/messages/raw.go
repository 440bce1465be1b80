package messages

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/store"
)

// MaxRawRecipients bounds the recipients of one relayed message.
const MaxRawRecipients = 1000

// SendRaw accepts a message an application relayed over SMTP: the
// envelope recipients and the message as sent. The From header's domain
// must be a verified sending domain of the account; Date and Message-ID
// are added when missing; line endings become CRLF. The message then goes
// the way of API messages (suppression, sealing, queue).
func (s *Service) SendRaw(ctx context.Context, actor account.Actor, rcpts []string, raw []byte) (Accepted, error) {
	if len(rcpts) == 0 || len(rcpts) > MaxRawRecipients {
		return Accepted{}, &mail.FieldError{Field: "rcpt", Message: fmt.Sprintf("1 to %d recipients", MaxRawRecipients)}
	}
	raw = crlf(raw)
	if len(raw) > MaxMessageBytes {
		return Accepted{}, ErrTooLarge
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return Accepted{}, &mail.FieldError{Field: "message", Message: "the header is not RFC 5322"}
	}
	body := raw[len(raw)-br.Buffered():]
	froms := h.Values("From")
	if len(froms) != 1 {
		return Accepted{}, &mail.FieldError{Field: "From", Message: "the message needs exactly one From header"}
	}
	from, err := mail.ParseAddress("From", decodeWords(froms[0]))
	if err != nil {
		return Accepted{}, err
	}
	p := prepared{id: store.NewID(), from: from, kind: KindTransactional, tags: "[]", metadata: "{}", options: "{}"}
	for i, r := range rcpts {
		a, err := mail.ParseAddress(fmt.Sprintf("rcpt[%d]", i), r)
		if err != nil {
			return Accepted{}, err
		}
		p.recipients = append(p.recipients, recipient{addr: a, kind: "to", kindIndex: i})
		p.utf8 = p.utf8 || a.UTF8
	}
	p.utf8 = p.utf8 || from.UTF8
	if _, err := s.domains.SigningKeys(ctx, actor.Principal.AccountID, from.Domain); err != nil {
		if errors.Is(err, domains.ErrUnverified) {
			return Accepted{}, &mail.FieldError{Field: "From", Message: "the sender's domain is not a verified sending domain of this account"}
		}
		return Accepted{}, err
	}
	now := s.opts.Now()
	p.sendAt = now
	if !h.Has("Date") {
		h.Set("Date", now.Format(time.RFC1123Z))
	}
	p.headerID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	if p.headerID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Accepted{}, err
		}
		p.headerID = hex.EncodeToString(b[:]) + "@" + from.Domain
		h.Set("Message-Id", "<"+p.headerID+">")
	}
	h.Del("Bcc") // never delivered (RFC 5322 §3.6.3)
	cache := &requestCache{}
	tagged, err := s.stripSubjectTag(ctx, actor.Principal.AccountID, &h, cache)
	if err != nil {
		return Accepted{}, err
	}
	var out bytes.Buffer
	if err := textproto.WriteHeader(&out, h); err != nil {
		return Accepted{}, err
	}
	out.Write(body)
	p.size = out.Len()
	if err := s.screenRaw(ctx, actor.Principal.AccountID, &p, out.Bytes(), tagged, cache); err != nil {
		return Accepted{}, err
	}
	if p.sealed, err = s.vault.Seal(ctx, actor.Principal.AccountID, out.Bytes(), BodyAD(actor.Principal.AccountID, p.id)); err != nil {
		return Accepted{}, err
	}
	var acc Accepted
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		jobs := domainJobs{}
		var err error
		if acc, err = s.insert(ctx, tx, actor, p, jobs); err != nil {
			return err
		}
		return jobs.insert(ctx, s.queue, tx)
	})
	return acc, err
}

// crlf turns bare LF line endings into CRLF (RFC 5322 §2.3).
func crlf(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) || bytes.Count(b, []byte("\r\n")) == bytes.Count(b, []byte("\n")) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/40)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// decodeWords decodes RFC 2047 encoded-words in a header value.
func decodeWords(v string) string {
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

var wordDecoder = new(mime.WordDecoder)

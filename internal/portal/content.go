package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
)

// Limits of one portal message and of one reply.
const (
	MaxContentBytes    = 25 << 20
	MaxAttachments     = 20
	MaxReplyBytes      = 10 << 20
	MaxReplyTextLength = 20000
)

// Attachment is a file of a portal message or reply.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Content     []byte `json:"content"`
}

// Content is what a portal message shows: sealed as a whole.
type Content struct {
	Subject     string       `json:"subject"`
	Text        string       `json:"text,omitempty"`
	HTML        string       `json:"html,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

func (c Content) size() int {
	n := len(c.Subject) + len(c.Text) + len(c.HTML)
	for _, a := range c.Attachments {
		n += len(a.Content) + len(a.Filename)
	}
	return n
}

// validate checks a content's shape; field prefixes the field names.
func (c *Content) validate(field string) error {
	if c.Text == "" && c.HTML == "" && len(c.Attachments) == 0 {
		return &FieldError{Field: field + "text", Message: "a text or HTML body, or an attachment, is required"}
	}
	for name, v := range map[string]string{"subject": c.Subject, "text": c.Text, "html": c.HTML} {
		if !utf8.ValidString(v) {
			return &FieldError{Field: field + name, Message: "must be UTF-8"}
		}
	}
	if len(c.Attachments) > MaxAttachments {
		return &FieldError{Field: field + "attachments", Message: fmt.Sprintf("at most %d attachments", MaxAttachments)}
	}
	for i := range c.Attachments {
		a := &c.Attachments[i]
		f := fmt.Sprintf("%sattachments[%d]", field, i)
		name, ok := cleanFilename(a.Filename)
		if !ok {
			return &FieldError{Field: f + ".filename", Message: "a plain file name (no path, no control characters, at most 200 bytes)"}
		}
		a.Filename = name
		if a.ContentType == "" {
			a.ContentType = "application/octet-stream"
		}
		if mt, _, err := mime.ParseMediaType(a.ContentType); err != nil || !strings.Contains(mt, "/") {
			return &FieldError{Field: f + ".content_type", Message: "a media type such as application/pdf"}
		} else {
			a.ContentType = mt
		}
	}
	if c.size() > MaxContentBytes {
		return &FieldError{Field: field + "attachments", Message: "the message is larger than 25 MiB"}
	}
	return nil
}

// cleanFilename accepts a plain file name: no directories, no control
// characters, not empty.
func cleanFilename(name string) (string, bool) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 || !utf8.ValidString(name) || name == "." || name == ".." ||
		strings.ContainsAny(name, `/\`) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	return path.Base(name), true
}

func encodeContent(c Content) ([]byte, error) { return json.Marshal(c) }

func decodeContent(b []byte) (Content, error) {
	var c Content
	err := json.Unmarshal(b, &c)
	return c, err
}

// errRawInvalid: a raw message does not parse.
var errRawInvalid = &FieldError{Field: "raw", Message: "not a parsable RFC 5322 message"}

// ParseRaw turns a raw RFC 5322 message into portal content: the subject,
// the first text/plain and text/html bodies that are not attachments, and
// every part with a file name (or a non-text type) as an attachment.
// Header and body decoding (RFC 2047 words, quoted-printable, base64,
// charsets) is go-message's. Nested multiparts are walked; a part that
// cannot be read fails the whole message, so nothing is silently lost.
func ParseRaw(raw []byte) (Content, error) {
	if len(raw) > MaxContentBytes*2 {
		return Content{}, &FieldError{Field: "raw", Message: "larger than 50 MiB"}
	}
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return Content{}, errRawInvalid
	}
	if r == nil {
		return Content{}, errRawInvalid
	}
	defer r.Close()
	var c Content
	if c.Subject, err = r.Header.Subject(); err != nil {
		c.Subject = r.Header.Get("Subject")
	}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return Content{}, errRawInvalid
		}
		if p == nil {
			return Content{}, errRawInvalid
		}
		body, err := io.ReadAll(io.LimitReader(p.Body, MaxContentBytes+1))
		if err != nil || len(body) > MaxContentBytes {
			return Content{}, errRawInvalid
		}
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			mt, _, _ := h.ContentType()
			switch {
			case mt == "text/html" && c.HTML == "":
				c.HTML = strings.ToValidUTF8(string(body), "\uFFFD")
			case (mt == "text/plain" || mt == "") && c.Text == "":
				c.Text = strings.ToValidUTF8(string(body), "\uFFFD")
			case strings.HasPrefix(mt, "text/"):
				// A second body of a kind already seen (an alternative
				// of another part): keep it as a file, not lose it.
				c.Attachments = append(c.Attachments, Attachment{Filename: fmt.Sprintf("part-%d.txt", len(c.Attachments)+1),
					ContentType: mt, Content: body})
			default:
				c.Attachments = append(c.Attachments, Attachment{Filename: fmt.Sprintf("part-%d", len(c.Attachments)+1),
					ContentType: mt, Content: body})
			}
		case *gomail.AttachmentHeader:
			mt, _, _ := h.ContentType()
			name, _ := h.Filename()
			if clean, ok := cleanFilename(name); ok {
				name = clean
			} else {
				name = fmt.Sprintf("attachment-%d", len(c.Attachments)+1)
			}
			c.Attachments = append(c.Attachments, Attachment{Filename: name, ContentType: mt, Content: body})
		}
	}
	c.Subject = strings.ToValidUTF8(c.Subject, "\uFFFD")
	return c, nil
}

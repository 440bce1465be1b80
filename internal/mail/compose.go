package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
)

// Attachment is a file attached to, or with ContentID shown inline in, a
// message.
type Attachment struct {
	Filename    string
	ContentType string
	Content     []byte
	ContentID   string
}

// Draft is a message to compose. Bcc recipients never appear in it; the
// caller gives them to SMTP only.
type Draft struct {
	From        Address
	ReplyTo     []Address
	To, Cc      []Address
	Subject     string
	Text        string
	HTML        string
	Headers     []Header
	Attachments []Attachment
	MessageID   string // without <>; generated when empty
	Date        time.Time

	// PlatformHeaders are fields Sealpost itself sets that custom
	// Headers may not (List-Unsubscribe and List-Unsubscribe-Post of
	// package tracking); ASCII values, written as given.
	PlatformHeaders []Header
}

// Validate checks what Build needs.
func (d Draft) Validate() error {
	if d.From.Domain == "" {
		return &FieldError{Field: "from", Message: "required"}
	}
	if len(d.Subject) > 998 || !utf8.ValidString(d.Subject) || hasControl(d.Subject) {
		return &FieldError{Field: "subject", Message: "at most 998 octets, without line breaks or control characters"}
	}
	if d.Text == "" && d.HTML == "" {
		return &FieldError{Field: "text", Message: "text or html is required"}
	}
	if !utf8.ValidString(d.Text) || !utf8.ValidString(d.HTML) {
		return &FieldError{Field: "text", Message: "bodies must be UTF-8"}
	}
	for _, h := range d.Headers {
		if err := ValidateHeader("headers."+sanitizeName(h.Name), h); err != nil {
			return err
		}
	}
	for _, h := range d.PlatformHeaders {
		if h.Name == "" || strings.ContainsAny(h.Name, " :\r\n") || strings.ContainsAny(h.Value, "\r\n") || !isASCII(h.Value) {
			return fmt.Errorf("compose: malformed platform header %q", sanitizeName(h.Name))
		}
	}
	for i, a := range d.Attachments {
		field := fmt.Sprintf("attachments[%d]", i)
		if a.Filename == "" || len(a.Filename) > 255 || strings.ContainsAny(a.Filename, `/\`) || hasControl(a.Filename) || !utf8.ValidString(a.Filename) {
			return &FieldError{Field: field + ".filename", Message: "1 to 255 characters, without path separators or control characters"}
		}
		if a.ContentType != "" {
			if mt, _, err := mime.ParseMediaType(a.ContentType); err != nil || !strings.Contains(mt, "/") || hasControl(a.ContentType) {
				return &FieldError{Field: field + ".content_type", Message: "must be a media type such as application/pdf"}
			}
		}
		if a.ContentID != "" && (len(a.ContentID) > 250 || strings.ContainsAny(a.ContentID, "<> \t") || hasControl(a.ContentID) || !isASCII(a.ContentID)) {
			return &FieldError{Field: field + ".content_id", Message: "printable ASCII without spaces or angle brackets"}
		}
	}
	return nil
}

// sanitizeName keeps a client-chosen header name safe to echo in a field
// path.
func sanitizeName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Build composes the message; it returns the bytes (CRLF line endings)
// and the Message-ID used.
func Build(d Draft) ([]byte, string, error) {
	if err := d.Validate(); err != nil {
		return nil, "", err
	}
	id := d.MessageID
	if id == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, "", err
		}
		id = hex.EncodeToString(b[:]) + "@" + d.From.Domain
	}
	date := d.Date
	if date.IsZero() {
		date = time.Now()
	}
	var h message.Header
	h.Set("Date", date.Format(time.RFC1123Z))
	h.Set("From", d.From.String())
	for _, list := range []struct {
		name  string
		addrs []Address
	}{{"Reply-To", d.ReplyTo}, {"To", d.To}, {"Cc", d.Cc}} {
		if len(list.addrs) > 0 {
			parts := make([]string, len(list.addrs))
			for i, a := range list.addrs {
				parts[i] = a.String()
			}
			h.Set(list.name, strings.Join(parts, ", "))
		}
	}
	if d.Subject != "" {
		h.SetText("Subject", d.Subject)
	}
	h.Set("Message-ID", "<"+id+">")
	h.Set("MIME-Version", "1.0")
	for _, x := range d.Headers {
		h.SetText(x.Name, x.Value)
	}
	for _, x := range d.PlatformHeaders {
		h.Set(x.Name, x.Value)
	}
	root := d.tree()
	for _, f := range root.headerFields() {
		h.Set(f[0], f[1])
	}
	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h)
	if err != nil {
		return nil, "", fmt.Errorf("compose: %w", err)
	}
	if err := root.writeBody(w); err != nil {
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), id, nil
}

// part is a node of the MIME tree.
type part struct {
	header   message.Header
	body     []byte
	children []*part
}

// tree builds the MIME structure: mixed{related{alternative{text, html},
// inline files}, attached files}, leaving out the levels that would hold
// one part.
func (d Draft) tree() *part {
	text := d.Text
	if text == "" {
		text = HTMLToText(d.HTML)
	}
	body := leaf("text/plain", map[string]string{"charset": "utf-8"}, "quoted-printable", []byte(text))
	if d.HTML != "" {
		html := leaf("text/html", map[string]string{"charset": "utf-8"}, "quoted-printable", []byte(d.HTML))
		var inline []*part
		for _, a := range d.Attachments {
			if a.ContentID != "" {
				inline = append(inline, file(a, "inline"))
			}
		}
		if len(inline) > 0 {
			html = multipart("related", append([]*part{html}, inline...))
		}
		body = multipart("alternative", []*part{body, html})
	}
	var files []*part
	for _, a := range d.Attachments {
		if a.ContentID == "" || d.HTML == "" {
			files = append(files, file(a, "attachment"))
		}
	}
	if len(files) > 0 {
		return multipart("mixed", append([]*part{body}, files...))
	}
	return body
}

func leaf(mediaType string, params map[string]string, encoding string, body []byte) *part {
	p := &part{body: body}
	p.header.SetContentType(mediaType, params)
	p.header.Set("Content-Transfer-Encoding", encoding)
	return p
}

func multipart(sub string, children []*part) *part {
	p := &part{children: children}
	p.header.SetContentType("multipart/"+sub, nil)
	return p
}

func file(a Attachment, disposition string) *part {
	ct := a.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(a.Filename))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	mt, params, _ := mime.ParseMediaType(ct)
	p := leaf(mt, params, "base64", a.Content)
	// go-message writes non-ASCII parameter values per RFC 2231.
	p.header.SetContentDisposition(disposition, map[string]string{"filename": a.Filename})
	if a.ContentID != "" {
		p.header.Set("Content-ID", "<"+a.ContentID+">")
	}
	return p
}

// headerFields returns the part header's fields as name/value pairs, to
// become the top-level header's MIME fields.
func (p *part) headerFields() [][2]string {
	var out [][2]string
	fields := p.header.Fields()
	for fields.Next() {
		out = append(out, [2]string{fields.Key(), fields.Value()})
	}
	return out
}

// writeBody writes the part's body into w (whose header is the part's).
func (p *part) writeBody(w *message.Writer) error {
	if len(p.children) == 0 {
		_, err := w.Write(p.body)
		return err
	}
	for _, c := range p.children {
		cw, err := w.CreatePart(c.header)
		if err != nil {
			return fmt.Errorf("compose: %w", err)
		}
		if err := c.writeBody(cw); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
	}
	return nil
}

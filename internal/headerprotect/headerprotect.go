// Package headerprotect prepares a complete RFC 5322 message for end-to-end
// encryption: it splits the header section into the few fields that must
// stay readable for transport and threading (the outer header) and the
// MIME entity that gets encrypted (the inner part), which keeps a copy of
// every original field, the real Subject included.
//
// It follows the header-protection scheme of RFC 9788: the inner
// Content-Type carries hp="cipher", and each field the outer header shows
// is recorded in the inner header as an HP-Outer field so a receiver can
// tell what was exposed. It does not add a legacy display element. It owns
// no cryptography: packages pgpmime and smime encrypt the inner part and
// write the outer message around it.
package headerprotect

import (
	"bytes"
	"errors"
	"mime"
	"strings"
)

// DefaultSubject is the neutral Subject written on the outer header when
// the caller sets none. It carries no PHI.
const DefaultSubject = "Encrypted message"

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("headerprotect: malformed message")

// Field is one header field as it appeared in the message, folding kept.
type Field struct {
	// Name is the field name as written (compare case-insensitively).
	Name string
	// Raw is the whole field, "Name: value" with any continuation lines,
	// ending in CRLF.
	Raw []byte
}

// Value returns the unfolded field body without surrounding white space.
func (f Field) Value() string {
	_, v, _ := bytes.Cut(f.Raw, []byte{':'})
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	return strings.TrimSpace(string(v))
}

// Message is a parsed message: its header fields in order and its body.
type Message struct {
	Header []Field
	Body   []byte
}

// Get returns the value of the first field named name, or "".
func (m *Message) Get(name string) string {
	for _, f := range m.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value()
		}
	}
	return ""
}

// Parse reads a message, normalising line endings to CRLF (RFC 5322
// §2.1). A message with no empty line has an empty body. It refuses a
// header line that is neither a field nor a continuation (RFC 5322 §2.2).
func Parse(msg []byte) (*Message, error) {
	msg = CRLF(msg)
	m := &Message{}
	rest := msg
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\r\n"))
		if !found {
			line, after = rest, nil
		}
		if len(line) == 0 {
			m.Body = after
			return m, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// RFC 5322 §2.2.3: a continuation line unfolds into the field above.
			if len(m.Header) == 0 {
				return nil, errors.Join(ErrMalformed, errors.New("continuation line before the first field"))
			}
			last := &m.Header[len(m.Header)-1]
			last.Raw = append(append(last.Raw, line...), '\r', '\n')
		} else {
			name, _, ok := bytes.Cut(line, []byte{':'})
			if !ok || !validName(name) {
				return nil, errors.Join(ErrMalformed, errors.New("header line is not a field"))
			}
			raw := make([]byte, 0, len(line)+2)
			raw = append(append(raw, line...), '\r', '\n')
			m.Header = append(m.Header, Field{Name: string(name), Raw: raw})
		}
		rest = after
	}
	return m, nil
}

// validName reports whether b is an RFC 5322 §3.6.8 field name: printable
// US-ASCII except colon, at least one character.
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// CRLF returns b with every bare LF or bare CR turned into CRLF, the
// canonical form that signatures cover (RFC 3156 §5, RFC 8551 §3.1.1).
func CRLF(b []byte) []byte {
	if !bytes.ContainsAny(b, "\r\n") {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// outerFields are the fields the outer header keeps in clear: what
// transport, threading, replies and one-click unsubscribe (RFC 8058)
// need. Everything else is only inside the encryption.
var outerFields = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true,
	"date": true, "message-id": true, "in-reply-to": true, "references": true,
	"list-id": true, "list-unsubscribe": true, "list-unsubscribe-post": true,
	"feedback-id": true, "auto-submitted": true,
}

// droppedFields never survive protection: trace and authentication
// results belong to the old transit, a DKIM signature would no longer
// verify (the delivery engine signs the outer message), and Bcc must never
// be shown (RFC 5322 §3.6.3).
var droppedFields = map[string]bool{
	"bcc": true, "received": true, "return-path": true, "dkim-signature": true,
	"arc-seal": true, "arc-message-signature": true, "arc-authentication-results": true,
	"authentication-results": true, "x-original-to": true, "delivered-to": true,
}

// Protected is a message split for encryption.
type Protected struct {
	// Outer is the header section to write in clear, ending with the
	// neutral Subject and MIME-Version; the caller adds its own
	// Content-Type (and Content-Transfer-Encoding).
	Outer []Field
	// Inner is the MIME entity to encrypt: every original field (Bcc and
	// trace removed), HP-Outer copies of the outer fields, a Content-Type
	// with hp="cipher", an empty line and the original body, all CRLF.
	Inner []byte
}

// Protect splits msg. subject is the outer Subject ("" means
// DefaultSubject); it must be one line of printable ASCII.
func Protect(msg []byte, subject string) (*Protected, error) {
	if subject == "" {
		subject = DefaultSubject
	}
	if !printableASCII(subject) {
		return nil, errors.Join(ErrMalformed, errors.New("outer subject must be printable ASCII"))
	}
	m, err := Parse(msg)
	if err != nil {
		return nil, err
	}
	if m.Get("From") == "" {
		return nil, errors.Join(ErrMalformed, errors.New("message has no From field"))
	}
	p := &Protected{}
	var inner bytes.Buffer
	inner.Grow(len(msg) + 512)
	contentType := ""
	for _, f := range m.Header {
		lower := strings.ToLower(f.Name)
		switch {
		case droppedFields[lower]:
			continue
		case lower == "content-type":
			if contentType == "" {
				contentType = f.Value()
			}
			continue
		case lower == "subject" || lower == "mime-version":
			// Rewritten on the outer header below; kept as is inside.
		case outerFields[lower]:
			p.Outer = append(p.Outer, f)
		}
		inner.Write(f.Raw)
	}
	p.Outer = append(p.Outer,
		Field{Name: "Subject", Raw: []byte("Subject: " + subject + "\r\n")},
		Field{Name: "MIME-Version", Raw: []byte("MIME-Version: 1.0\r\n")},
	)
	// RFC 9788: HP-Outer records each field the outer header shows.
	for _, f := range p.Outer {
		if strings.EqualFold(f.Name, "MIME-Version") {
			continue
		}
		inner.WriteString("HP-Outer: " + f.Name + ": ")
		inner.WriteString(foldedValue(f))
		inner.WriteString("\r\n")
	}
	inner.WriteString("Content-Type: " + markCipher(contentType) + "\r\n\r\n")
	inner.Write(m.Body)
	p.Inner = inner.Bytes()
	return p, nil
}

// foldedValue returns the field body as written (continuation lines kept,
// so no line grows past the RFC 5322 §2.1.1 limit), without the leading
// space and the final CRLF.
func foldedValue(f Field) string {
	_, v, _ := bytes.Cut(f.Raw, []byte{':'})
	v = bytes.TrimSuffix(v, []byte("\r\n"))
	return strings.TrimLeft(string(v), " \t")
}

// markCipher returns the Content-Type value with the RFC 9788
// hp="cipher" parameter. A missing Content-Type is RFC 2045 §5.2's
// default; one that does not parse is kept unmarked rather than guessed at.
func markCipher(ct string) string {
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	params["hp"] = "cipher"
	out := mime.FormatMediaType(mt, params)
	if out == "" {
		return ct
	}
	return out
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 32 || s[i] > 126 {
			return false
		}
	}
	return true
}

// WriteOuter writes the outer header fields, then extra (each a whole
// "Name: value" line without CRLF), then the empty line that ends the
// header section.
func (p *Protected) WriteOuter(b *bytes.Buffer, extra ...string) {
	for _, f := range p.Outer {
		b.Write(f.Raw)
	}
	for _, e := range extra {
		b.WriteString(e)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
}

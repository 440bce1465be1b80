// Package mail validates and composes outgoing messages: mailboxes (RFC
// 5322 §3.4, with internationalised domains as IDNA A-labels and UTF-8
// local parts per RFC 6531), custom header fields (no injection), and the
// MIME structure (RFC 2045-2047, 2231) of text, HTML, inline and attached
// files, written with CRLF line endings and no line over 998 octets (RFC
// 5322 §2.1.1), ready for DKIM signing and SMTP DATA.
package mail

import (
	"errors"
	"mime"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("mail: invalid")

// FieldError names the offending field and what is wrong with it, never
// echoing the value (it may be PHI).
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Address is a validated mailbox.
type Address struct {
	Name   string // display name, may be empty
	Local  string // local part as given
	Domain string // IDNA A-labels, lower case
	UTF8   bool   // the local part is not ASCII: needs SMTPUTF8
}

// Addr returns local@domain.
func (a Address) Addr() string { return a.Local + "@" + a.Domain }

// String returns the header form of the mailbox.
func (a Address) String() string {
	if a.Name == "" {
		return a.Addr()
	}
	return formatName(a.Name) + " <" + a.Addr() + ">"
}

// formatName encodes a display name: RFC 2047 when not ASCII, quoted when
// it holds specials (RFC 5322 §3.2.3).
func formatName(name string) string {
	if !isASCII(name) {
		return mime.QEncoding.Encode("utf-8", name)
	}
	if strings.ContainsAny(name, "()<>[]:;@\\,.\"") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return name
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) >= 0
}

// ParseAddress parses a mailbox, "local@domain" or "Name <local@domain>".
func ParseAddress(field, s string) (Address, error) {
	bad := func(msg string) (Address, error) { return Address{}, &FieldError{Field: field, Message: msg} }
	if s == "" {
		return bad("required")
	}
	if len(s) > 998 || hasControl(s) || !utf8.ValidString(s) {
		return bad("must be one address without control characters")
	}
	parsed, err := (&mail.AddressParser{}).Parse(s)
	if err != nil {
		return bad("must be an address such as name@example.org")
	}
	at := strings.LastIndexByte(parsed.Address, '@')
	if at <= 0 {
		return bad("must be an address such as name@example.org")
	}
	local, domain := parsed.Address[:at], parsed.Address[at+1:]
	if len(local) > 64 {
		return bad("the part before @ is longer than 64 octets")
	}
	if strings.HasPrefix(domain, "[") {
		return bad("address literals are not accepted; use a domain name")
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil || !validHostname(ascii) {
		return bad("the domain is not a valid domain name")
	}
	a := Address{Name: parsed.Name, Local: local, Domain: strings.ToLower(ascii), UTF8: !isASCII(local)}
	if len(a.Addr()) > 254 {
		return bad("longer than 254 octets")
	}
	return a, nil
}

// validHostname checks an ASCII domain of at least two labels, each 1..63
// letters, digits and hyphens, not starting or ending with a hyphen.
func validHostname(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Header is a custom header field.
type Header struct{ Name, Value string }

// reservedHeaders are the fields the platform writes itself.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "reply-to": true, "sender": true, "subject": true, "date": true,
	"message-id": true, "mime-version": true, "content-type": true, "content-transfer-encoding": true,
	"content-disposition": true, "dkim-signature": true, "received": true, "return-path": true, "list-unsubscribe": true,
	"list-unsubscribe-post": true, "authentication-results": true,
}

// ValidateHeader checks a custom header field.
func ValidateHeader(field string, h Header) error {
	bad := func(msg string) error { return &FieldError{Field: field, Message: msg} }
	if h.Name == "" || len(h.Name) > 76 {
		return bad("header names are 1 to 76 characters")
	}
	for i := 0; i < len(h.Name); i++ {
		if c := h.Name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return bad("header names are printable ASCII without spaces or colons")
		}
	}
	lower := strings.ToLower(h.Name)
	if reservedHeaders[lower] || strings.HasPrefix(lower, "arc-") {
		return bad("this header is set by Sealpost")
	}
	if len(h.Value) > 998 {
		return bad("header values are at most 998 octets")
	}
	if !utf8.ValidString(h.Value) || strings.IndexFunc(h.Value, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) >= 0 {
		return bad("header values cannot hold line breaks or control characters")
	}
	return nil
}

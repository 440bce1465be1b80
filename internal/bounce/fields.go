package bounce

import (
	"bytes"
	"strings"
)

// field is one "Name: value" line of a report part, unfolded.
type field struct {
	name  string // lower case
	value string // trimmed, comments kept
}

type block []field

// isRecipient tells a per-recipient group from the per-message one (RFC
// 3464 §2.1): it names a recipient or an action. Deciding by content
// rather than position copes with reports that leave the per-message
// group out.
func (b block) isRecipient() bool {
	for _, f := range b {
		switch f.name {
		case "final-recipient", "original-recipient", "action":
			return true
		}
	}
	return false
}

// Bounds on one report part: fields kept, and bytes of one field's value
// (a Diagnostic-Code is a few hundred bytes; more is cut).
const (
	maxFields     = 10000
	maxFieldValue = 8 << 10
)

// parseFields splits a message/delivery-status or message/feedback-report
// body into groups of header-style fields separated by blank lines (RFC
// 3464 §2.1), unfolding continuation lines (RFC 5322 §2.2.3). It is
// lenient: lines without a colon are skipped, LF and CRLF both end lines.
func parseFields(data []byte) []block {
	var out []block
	var cur block
	var value strings.Builder // the last field's value, being unfolded
	n := 0
	endField := func() {
		if len(cur) > 0 {
			cur[len(cur)-1].value = value.String()
		}
		value.Reset()
	}
	add := func(b []byte) {
		b = bytes.TrimSpace(b)
		if len(b) == 0 || value.Len() >= maxFieldValue {
			return
		}
		if value.Len() > 0 {
			value.WriteByte(' ')
		}
		value.Write(b[:min(len(b), maxFieldValue-value.Len())])
	}
	endBlock := func() {
		endField()
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
	}
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			endBlock()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(cur) > 0 {
				add(line)
			}
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		name = bytes.TrimSpace(name)
		if !ok || len(name) == 0 || n >= maxFields {
			continue
		}
		endField()
		n++
		cur = append(cur, field{name: strings.ToLower(string(name))})
		add(rest)
	}
	endBlock()
	return out
}

// splitTyped splits "type; value" (RFC 3464 §2.1.2 address-type,
// diagnostic-type, mta-name-type) into its lower-cased type and value; a
// value without a type has an empty type.
func splitTyped(v string) (string, string) {
	typ, rest, ok := strings.Cut(v, ";")
	if !ok {
		return "", strings.TrimSpace(v)
	}
	return strings.ToLower(strings.TrimSpace(typ)), strings.TrimSpace(rest)
}

// typed returns the value of a "type; value" field.
func typed(v string) string {
	_, rest := splitTyped(v)
	return rest
}

// address returns the address of "rfc822; <user@example.org>" (any
// address type), without angle brackets or a trailing comment.
func address(v string) string {
	a := typed(v)
	if i := strings.IndexByte(a, '('); i >= 0 {
		a = a[:i]
	}
	a = strings.TrimSpace(a)
	if i, j := strings.IndexByte(a, '<'), strings.LastIndexByte(a, '>'); i >= 0 && j > i {
		a = a[i+1 : j]
	}
	return strings.TrimSpace(a)
}

// action returns a valid RFC 3464 §2.3.3 action, lower case, or "".
func action(v string) string {
	switch a := strings.ToLower(firstWord(v)); a {
	case "failed", "delayed", "delivered", "relayed", "expanded":
		return a
	}
	return ""
}

func firstWord(v string) string {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '(' || r == ';' })
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// statusCode returns the RFC 3463 code a Status field starts with
// ("5.1.1 (bad mailbox)" gives "5.1.1"), or "" when it is malformed.
func statusCode(v string) string {
	c := firstWord(v)
	if isStatus(c) {
		return c
	}
	return ""
}

// isStatus checks RFC 3463 §2 syntax: class "." subject "." detail, with
// class 2, 4 or 5, subject up to 3 digits and detail up to 3 digits.
func isStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// enhancedIn finds an enhanced status code in an SMTP reply text ("550
// 5.1.1 user unknown", "550-5.1.1 ...": RFC 2034 §4 puts it after the
// reply code).
func enhancedIn(text string) string {
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '-' || r == '\t' || r == '#' }) {
		w = strings.Trim(w, "()[],;:<>")
		if isStatus(w) {
			return w
		}
	}
	return ""
}

// replyCode returns the three-digit SMTP reply code a diagnostic starts
// with (RFC 5321 §4.2), or 0.
func replyCode(text string) int {
	if len(text) < 3 {
		return 0
	}
	c := text[:3]
	if c[0] < '2' || c[0] > '5' || c[1] < '0' || c[1] > '9' || c[2] < '0' || c[2] > '9' {
		return 0
	}
	if len(text) > 3 && text[3] != ' ' && text[3] != '-' {
		return 0
	}
	return int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
}

package secureline

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// DefaultSubjectTag is the relay subject tag of an account that never
// set one.
const DefaultSubjectTag = "[secure]"

// MaxSubjectTagLen bounds a subject tag, in bytes.
const MaxSubjectTagLen = 32

// ErrBadSubjectTag: a subject tag that is empty, too long, or holds
// control characters or leading or trailing spaces.
var ErrBadSubjectTag = errors.New("secureline: the subject tag must be 1 to 32 printable characters without leading or trailing spaces")

// ValidateSubjectTag checks a tag an administrator sets.
func ValidateSubjectTag(tag string) error {
	if tag == "" || len(tag) > MaxSubjectTagLen || !utf8.ValidString(tag) || strings.TrimSpace(tag) != tag {
		return ErrBadSubjectTag
	}
	for _, r := range tag {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ErrBadSubjectTag
		}
	}
	return nil
}

// StripSubjectTag finds tag in subject, ignoring case, and returns the
// subject without it (every occurrence, with the space around each
// occurrence collapsed) and whether it was there; a sender using the SMTP
// relay raises the message's minimum to end-to-end that way, and the
// recipient never sees the tag. A tag that starts or ends with a letter or
// digit matches only as a whole word ("secure" does not match in
// "insecure"). The subject must be decoded (RFC 2047 encoded words
// resolved) and unfolded first; nothing but the tag and the space around
// it is changed, so anything else in the subject, CR and LF included,
// reaches the header checks exactly as the sender wrote it.
func StripSubjectTag(subject, tag string) (string, bool) {
	if tag == "" || len(subject) < len(tag) {
		return subject, false
	}
	lower, ltag := strings.ToLower(subject), strings.ToLower(tag)
	if len(lower) != len(subject) || len(ltag) != len(tag) {
		// Case mapping changed byte lengths (rare non-ASCII letters):
		// compare ASCII case only, so offsets stay valid.
		lower, ltag = asciiLower(subject), asciiLower(tag)
	}
	var b strings.Builder
	found := false
	last := 0
	for i := 0; i+len(ltag) <= len(lower); {
		j := strings.Index(lower[i:], ltag)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(ltag)
		if !wordBounded(subject, tag, start, end) {
			i = start + 1
			continue
		}
		found = true
		left := strings.TrimRight(subject[last:start], " \t")
		b.WriteString(left)
		rest := strings.TrimLeft(subject[end:], " \t")
		if left != "" && rest != "" {
			b.WriteByte(' ')
		}
		last = len(subject) - len(rest)
		i = last
	}
	if !found {
		return subject, false
	}
	b.WriteString(subject[last:])
	return strings.Trim(b.String(), " \t"), true
}

// wordBounded: a tag edge that is a letter or digit must not touch
// another letter or digit in the subject.
func wordBounded(subject, tag string, start, end int) bool {
	first, _ := utf8.DecodeRuneInString(tag)
	lastR, _ := utf8.DecodeLastRuneInString(tag)
	if isWordRune(first) && start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(subject[:start]); isWordRune(r) {
			return false
		}
	}
	if isWordRune(lastR) && end < len(subject) {
		if r, _ := utf8.DecodeRuneInString(subject[end:]); isWordRune(r) {
			return false
		}
	}
	return true
}

func isWordRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r >= 0x80 && r != utf8.RuneError
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

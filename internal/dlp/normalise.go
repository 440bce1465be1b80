package dlp

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalise returns s as a reader sees it, undoing the tricks that hide an
// identifier from pattern matching while leaving it readable:
//
//   - invisible format characters (Unicode category Cf: zero-width space,
//     joiners, U+FEFF, soft hyphen, bidi controls) are removed;
//   - compatibility forms are folded by NFKC (Unicode UAX #15), so
//     full-width digits and dashes, superscripts and circled digits become
//     ASCII;
//   - decimal digits of any script (category Nd) become ASCII digits;
//   - dashes (category Pd, and U+2212 minus) become '-', spaces (category
//     Zs) become ' ', line and paragraph separators become '\n';
//   - combining marks laid over a digit are dropped.
//
// Invalid UTF-8 becomes U+FFFD. ASCII input is returned unchanged. The
// result is stable: Normalise(Normalise(s)) == Normalise(s).
func Normalise(s string) string {
	if isASCII(s) {
		return s
	}
	s = fold(strings.ToValidUTF8(s, "\uFFFD"))
	if !norm.NFKC.IsNormalString(s) {
		// Compatibility forms (superscripts, circled digits, ligatures)
		// fold to characters the first pass maps or keeps.
		s = fold(norm.NFKC.String(s))
	}
	return s
}

// fold removes format characters and maps digits, dashes and spaces; see
// Normalise.
func fold(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prevDigit := false
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteByte(byte(r))
			prevDigit = r >= '0' && r <= '9'
			continue
		case unicode.IsLetter(r):
			b.WriteRune(r)
		case unicode.Is(unicode.Cf, r):
			continue
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
			if prevDigit {
				continue
			}
			b.WriteRune(r)
		case unicode.Is(unicode.Nd, r):
			b.WriteByte('0' + digitValue(r))
			prevDigit = true
			continue
		case r == '\u2212' || unicode.Is(unicode.Pd, r):
			b.WriteByte('-')
		case r == '\u2028' || r == '\u2029' || r == '\u0085':
			b.WriteByte('\n')
		case unicode.Is(unicode.Zs, r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		prevDigit = false
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// digitValue is the value of a decimal digit rune. Unicode allocates each
// script's digits 0 to 9 contiguously, so within a range of the Nd table
// the value is the distance from the range's first zero, modulo 10.
func digitValue(r rune) byte {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) % 10)
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) % 10)
		}
	}
	return 0
}

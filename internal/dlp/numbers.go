package dlp

// Numeric identifiers: SSN, phone, NPI, payment card, ABA routing number.
//
// The text is read as spans of digit groups. Groups are joined strongly
// by a single '-', '.' or '/' ("123-45-6789") and weakly by up to three
// bytes of spaces, parentheses and at most one of "-./" ("(555) 123 4567",
// "123 - 45 - 6789"). A strongly joined chunk is one token; candidates are
// runs of whole chunks of at most 19 digits, so "123-45-6789-0000" is never
// read as an SSN but "SSN 123 45 6789" is.

// maxGroups ends a span: no identifier has that many groups, and a text
// of ten megabytes of "1 2 3 ..." must not hold millions of them at once.
const maxGroups = 64

// group is a run of digits; sep is how it joins the group before it.
type group struct {
	start, end int
	sep        sepKind
	strong     bool
}

type sepKind uint8

const (
	sepNone  sepKind = iota
	sepDash          // contains '-'
	sepDot           // contains '.'
	sepSlash         // contains '/'
	sepSpace         // spaces and parentheses only
)

// numbers finds the digit spans and evaluates the candidates in each.
func (a *analysis) numbers() {
	t := a.text
	var groups []group
	for i := 0; i < len(t); {
		if a.tick() {
			return
		}
		if !isDigit(t[i]) {
			i++
			continue
		}
		groups = groups[:0]
		sep, strong := sepNone, false
		for {
			j := i
			for j < len(t) && isDigit(t[j]) {
				j++
			}
			groups = append(groups, group{start: i, end: j, sep: sep, strong: strong})
			k, s, st, ok := readSeparator(t, j)
			if !ok || len(groups) >= maxGroups {
				i = j
				break
			}
			i, sep, strong = k, s, st
		}
		a.span(groups)
	}
}

// readSeparator reads a separator at j; ok when a digit follows it.
func readSeparator(t string, j int) (next int, kind sepKind, strong bool, ok bool) {
	k, punct, paren, space := j, 0, 0, 0
	kind = sepSpace
	for k < len(t) && k-j < 3 {
		switch t[k] {
		case '-':
			punct++
			kind = sepDash
		case '.':
			punct++
			kind = sepDot
		case '/':
			punct++
			kind = sepSlash
		case ' ', '\t':
			space++
		case '(', ')':
			paren++
		default:
			goto end
		}
		k++
	}
end:
	if k == j || k >= len(t) || !isDigit(t[k]) || punct > 1 || paren > 1 {
		return 0, 0, false, false
	}
	return k, kind, punct == 1 && space == 0 && paren == 0, true
}

// attachment says how a span touches the text around it.
type attachment uint8

const (
	free attachment = iota
	soft            // separated by one of "-./" from a letter or digit: "INV-123456789"
	hard            // a letter or digit directly next to it: "A123456789"
)

func (a *analysis) attachedBefore(i int) attachment {
	if a.wordChar(i - 1) {
		return hard
	}
	if i >= 1 && (a.text[i-1] == '-' || a.text[i-1] == '.' || a.text[i-1] == '/') && a.wordChar(i-2) {
		return soft
	}
	return free
}

func (a *analysis) attachedAfter(i int) attachment {
	if a.wordChar(i) {
		return hard
	}
	if i < len(a.text) && (a.text[i] == '-' || a.text[i] == '.' || a.text[i] == '/') && a.wordChar(i+1) {
		return soft
	}
	return free
}

// candidate is a run of whole chunks.
type candidate struct {
	groups  []group
	digits  []byte
	start   int
	end     int
	penalty float64 // for touching other tokens or being part of a span
}

// lens reports whether the candidate's groups have exactly these lengths.
func (c *candidate) lens(want ...int) bool {
	if len(c.groups) != len(want) {
		return false
	}
	for i, g := range c.groups {
		if g.end-g.start != want[i] {
			return false
		}
	}
	return true
}

// seps reports whether every join in the candidate is of kind k.
func (c *candidate) seps(k sepKind) bool {
	for _, g := range c.groups[1:] {
		if g.sep != k {
			return false
		}
	}
	return true
}

func (a *analysis) span(groups []group) {
	// Chunk boundaries: indexes of groups that start a chunk.
	var starts []int
	for i, g := range groups {
		if i == 0 || !g.strong {
			starts = append(starts, i)
		}
	}
	nChunks := len(starts)
	chunkEnd := func(ci int) int { // one past the chunk's last group
		if ci+1 < nChunks {
			return starts[ci+1]
		}
		return len(groups)
	}
	before := a.attachedBefore(groups[0].start)
	after := a.attachedAfter(groups[len(groups)-1].end)
	var buf [19]byte
	for ci := 0; ci < nChunks; ci++ {
		if ci == 0 && before == hard {
			continue
		}
		n := 0
		for cj := ci; cj < nChunks; cj++ {
			if cj == nChunks-1 && after == hard {
				break
			}
			over := false
			for _, g := range groups[starts[cj]:chunkEnd(cj)] {
				if n+g.end-g.start > len(buf) {
					over = true
					break
				}
				n += copy(buf[n:], a.text[g.start:g.end])
			}
			if over {
				break
			}
			c := candidate{groups: groups[starts[ci]:chunkEnd(cj)], digits: buf[:n]}
			c.start, c.end = c.groups[0].start, c.groups[len(c.groups)-1].end
			if ci > 0 || cj < nChunks-1 {
				c.penalty += 0.1
			}
			if (ci == 0 && before == soft) || (cj == nChunks-1 && after == soft) {
				c.penalty += 0.3
			}
			a.numberCandidate(&c)
		}
	}
}

func (a *analysis) numberCandidate(c *candidate) {
	switch n := len(c.digits); {
	case n == 9:
		a.ssn(c)
		a.aba(c)
	case n == 10 || n == 11:
		a.phone(c)
		if n == 10 {
			a.npi(c)
		}
	}
	if n := len(c.digits); n >= 13 && n <= 19 {
		a.card(c)
	}
}

// ssn applies the SSA's rules for numbers it issues (SSA, "Social
// Security Number Randomization", effective 25 June 2011: any area is now
// possible except these): area 000, 666 and 900-999 are never issued, nor
// group 00 or serial 0000.
func (a *analysis) ssn(c *candidate) {
	d := c.digits
	area := atoi(d[0:3])
	if area == 0 || area == 666 || area >= 900 || atoi(d[3:5]) == 0 || atoi(d[5:9]) == 0 {
		return
	}
	var conf float64
	switch {
	case c.lens(3, 2, 4) && c.seps(sepDash):
		conf = 0.75
	case c.lens(3, 2, 4):
		conf = 0.65
	case c.lens(9):
		conf = 0.35
	default:
		conf = 0.25
	}
	conf = a.adjust(conf-c.penalty, 0.3, ctxSSN, c.start, c.end)
	if wellKnownSSN(d) {
		conf = 0.15
	}
	a.emit(SSN, conf, c.start, c.end)
}

// wellKnownSSN reports numbers that are published or placeholders, not
// anyone's: the Woolworth wallet card 078-05-1120, the SSA's own 1940s
// sample 219-09-9999, the sequence 123-45-6789, and one digit repeated.
func wellKnownSSN(d []byte) bool {
	switch string(d) {
	case "078051120", "219099999", "123456789":
		return true
	}
	for _, c := range d[1:] {
		if c != d[0] {
			return false
		}
	}
	return true
}

// aba checks an ABA routing transit number, only next to a banking word:
// the first two digits are a Federal Reserve routing symbol (00-12, 21-32,
// 61-72, 80), and 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) is a multiple
// of 10 (ABA Key to Routing Numbers).
func (a *analysis) aba(c *candidate) {
	if !a.near(ctxABA, c.start, c.end, ctxBefore, ctxAfter) || !validABA(c.digits) {
		return
	}
	a.emit(ABARouting, 0.9-c.penalty, c.start, c.end)
}

func validABA(d []byte) bool {
	if len(d) != 9 {
		return false
	}
	p := atoi(d[0:2])
	if !(p <= 12 || (p >= 21 && p <= 32) || (p >= 61 && p <= 72) || p == 80) {
		return false
	}
	v := func(i int) int { return int(d[i] - '0') }
	sum := 3*(v(0)+v(3)+v(6)) + 7*(v(1)+v(4)+v(7)) + v(2) + v(5) + v(8)
	return sum%10 == 0
}

// phone checks a North American Numbering Plan number (NANPA numbering
// rules): area code and exchange are NXX with N 2-9; neither is an N11
// service code; area codes N9X are reserved for expansion. NANPA sets
// 555-0100 to 555-0199 aside for fictional use.
func (a *analysis) phone(c *candidate) {
	d := c.digits
	formatted := c.lens(3, 3, 4) || (c.lens(1, 3, 3, 4) && d[0] == '1')
	plain := c.lens(10) || (c.lens(11) && d[0] == '1')
	if !formatted && !plain {
		return
	}
	if len(d) == 11 {
		if d[0] != '1' {
			return
		}
		d = d[1:]
	}
	if !validNANP(d) {
		return
	}
	conf := 0.3
	if formatted {
		conf = 0.6
	}
	conf = a.adjust(conf-c.penalty, 0.3, ctxPhone, c.start, c.end)
	if string(d[3:6]) == "555" && d[6] == '0' && d[7] == '1' {
		conf = 0.15
	}
	start := c.start
	if start > 0 && a.text[start-1] == '(' {
		start-- // "(415) 555-2671"
	}
	a.emit(Phone, conf, start, c.end)
}

func validNANP(d []byte) bool {
	nxx := func(x []byte) bool { return x[0] >= '2' && !(x[1] == '1' && x[2] == '1') }
	return nxx(d[0:3]) && d[1] != '9' && nxx(d[3:6])
}

// npi checks a National Provider Identifier (45 CFR 162.406; CMS,
// "Requirements for the NPI Check Digit"): ten digits starting with 1 or
// 2 whose last digit is the Luhn check digit of the first nine prefixed by
// 80840, the ISO/IEC 7812 issuer prefix for US health applications.
// Written unformatted.
func (a *analysis) npi(c *candidate) {
	d := c.digits
	if !c.lens(10) || !validNPI(d) {
		return
	}
	conf := a.adjust(0.4-c.penalty, 0.55, ctxNPI, c.start, c.end)
	a.emit(NPI, conf, c.start, c.end)
}

func validNPI(d []byte) bool {
	if len(d) != 10 || (d[0] != '1' && d[0] != '2') {
		return false
	}
	full := make([]byte, 0, 15)
	full = append(full, "80840"...)
	full = append(full, d...)
	return luhn(full)
}

// card checks a payment card number (ISO/IEC 7812): 13 to 19 digits, an
// issuer identification number of a known network with a length it
// issues, and a valid Luhn check digit.
func (a *analysis) card(c *candidate) {
	d := c.digits
	if !knownIIN(d) || !luhn(d) {
		return
	}
	conf := 0.5
	if standardCardGrouping(c) {
		conf = 0.8
	}
	conf = a.adjust(conf-c.penalty, 0.15, ctxCard, c.start, c.end)
	if testPAN[string(d)] {
		conf = 0.2
	}
	a.emit(PaymentCard, conf, c.start, c.end)
}

// testPAN are the networks' published test numbers.
var testPAN = map[string]bool{
	"4111111111111111": true, "4242424242424242": true, "4012888888881881": true,
	"5555555555554444": true, "5105105105105100": true, "378282246310005": true,
	"371449635398431": true, "6011111111111117": true, "3530111333300000": true,
	"30569309025904": true, "4000056655665556": true, "2223003122003222": true,
}

func standardCardGrouping(c *candidate) bool {
	if len(c.groups) == 1 {
		return true
	}
	if c.lens(4, 6, 5) || c.lens(4, 6, 4) {
		return true
	}
	for _, g := range c.groups[:len(c.groups)-1] {
		if g.end-g.start != 4 {
			return false
		}
	}
	return true
}

// knownIIN reports whether the number starts with an issuer range of a
// major network and has a length that network issues.
func knownIIN(d []byte) bool {
	n := len(d)
	p := func(k int) int { return atoi(d[:k]) }
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p(2) >= 51 && p(2) <= 55, p(4) >= 2221 && p(4) <= 2720: // Mastercard
		return n == 16
	case p(2) == 34 || p(2) == 37: // American Express
		return n == 15
	case p(4) == 6011, p(3) >= 644 && p(3) <= 649, p(2) == 65, p(2) == 62: // Discover, UnionPay
		return n >= 16
	case p(4) >= 3528 && p(4) <= 3589: // JCB
		return n >= 16
	case p(3) >= 300 && p(3) <= 305, p(2) == 36, p(2) == 38, p(2) == 39: // Diners Club
		return n >= 14
	case p(4) == 5018 || p(4) == 5020 || p(4) == 5038 || p(4) == 5893 || p(4) == 6304 || p(4) == 6759 || (p(4) >= 6761 && p(4) <= 6763): // Maestro
		return n >= 13
	}
	return false
}

// luhn reports whether the digits end in a valid Luhn (mod 10) check
// digit (ISO/IEC 7812-1 Annex B).
func luhn(d []byte) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

func atoi(d []byte) int {
	n := 0
	for _, c := range d {
		n = n*10 + int(c-'0')
	}
	return n
}

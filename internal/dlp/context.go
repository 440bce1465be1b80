package dlp

import (
	"regexp"
	"strconv"
	"time"
)

// Detectors that only look next to their keywords: dates of birth,
// procedure codes, medical record numbers. Each reads a short window after
// every keyword hit, so their cost follows the number of keywords, not the
// size of the text.

// filler is what may stand between a keyword and its value:
// "DOB: ", "born on ", "MRN is #", "CPT code(s) - ".
const filler = `^[\s:=#\-(),.]*(?:(?:is|was|on|of|no|number|num|nbr|code|codes|s)\b[\s:=#\-(),.]*)*`

var (
	dobRe = regexp.MustCompile(filler + `(` +
		`(\d{1,2})\s?[/.\-]\s?(\d{1,2})\s?[/.\-]\s?(\d{4}|\d{2})` +
		`|(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})` +
		`|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})` +
		`|(\d{1,2})(?:st|nd|rd|th)?[\s\-]+(?:of\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?[\s\-]+(\d{4})` +
		`)`)
	mrnRe    = regexp.MustCompile(filler + `([a-z]{0,3}-?\d{5,12})`)
	fillerRe = regexp.MustCompile(filler)
)

var months = map[string]time.Month{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}

// window is the lowered text after a hit, up to n bytes.
func (a *analysis) window(h hit, n int) string {
	end := h.end + n
	if end > len(a.lower) {
		end = len(a.lower)
	}
	return a.lower[h.end:end]
}

// datesOfBirth finds a valid past date right after a date-of-birth word.
// Dates elsewhere (appointments, invoices, results) are not identifiers
// on their own and are not reported.
func (a *analysis) datesOfBirth() {
	now := a.s.opts.Now()
	for _, h := range a.hits[ctxDOB] {
		if a.tick() {
			return
		}
		w := a.window(h, 48)
		m := dobRe.FindStringSubmatchIndex(w)
		if m == nil {
			continue
		}
		start, end := h.end+m[2], h.end+m[3]
		if end < len(a.text) && isDigit(a.text[end]) {
			continue
		}
		g := func(i int) string {
			if m[2*i] < 0 {
				return ""
			}
			return w[m[2*i]:m[2*i+1]]
		}
		var y, mo, d int
		switch {
		case g(2) != "":
			mo, d, y = num(g(2)), num(g(3)), year(g(4), now)
			if mo > 12 && d <= 12 { // day first
				mo, d = d, mo
			}
		case g(5) != "":
			y, mo, d = num(g(5)), num(g(6)), num(g(7))
		case g(8) != "":
			mo, d, y = int(months[g(8)]), num(g(9)), num(g(10))
		default:
			d, mo, y = num(g(11)), int(months[g(12)]), num(g(13))
		}
		if !validPastDate(y, mo, d, now) {
			continue
		}
		conf := 0.9
		if a.lower[h.start:h.end] == "born" {
			conf = 0.8
		}
		a.emit(DOB, conf, start, end)
	}
}

func num(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// year reads a two-digit year as the latest year not in the future.
func year(s string, now time.Time) int {
	y := num(s)
	if len(s) == 2 {
		y += 2000
		if y > now.Year() {
			y -= 100
		}
	}
	return y
}

func validPastDate(y, mo, d int, now time.Time) bool {
	if y < 1900 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return false
	}
	t := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
	return t.Day() == d && !t.After(now)
}

// procedureCodes reads CPT codes after "CPT", "HCPCS" or "procedure":
// five digits in the Category I range 00100-99607, or four digits and F
// (Category II) or T (Category III). A five-digit number alone is too
// common (ZIP codes, amounts) to report.
func (a *analysis) procedureCodes() {
	for _, h := range a.hits[ctxCPT] {
		if a.tick() {
			return
		}
		conf := 0.65
		if c := a.lower[h.start]; c == 'c' || c == 'h' || c == 'b' {
			conf = 0.85 // "CPT", "HCPCS", "billing code"
		}
		end := h.end + 64
		if end > len(a.text) {
			end = len(a.text)
		}
		found := 0
		for i := h.end; i < end && found < 8; i++ {
			if !isDigit(a.text[i]) || (i > 0 && a.wordChar(i-1)) {
				continue
			}
			j := i
			for j < len(a.text) && isDigit(a.text[j]) {
				j++
			}
			k := j
			if j-i == 4 && j < len(a.text) && (a.text[j] == 'F' || a.text[j] == 'T') {
				k = j + 1
			}
			ok := (j-i == 5 && k == j && num(a.text[i:j]) >= 100 && num(a.text[i:j]) <= 99607) || (j-i == 4 && k == j+1)
			if ok && !a.wordChar(k) && a.attachedBefore(i) == free {
				a.emit(CPT, conf, i, k)
				found++
			}
			i = k
		}
	}
}

// recordNumbers reads medical record numbers after their keywords (the
// built-in format: up to three letters, then 5 to 12 digits) and runs the
// account's patterns, next to a keyword or, when allowed, anywhere.
func (a *analysis) recordNumbers() {
	for _, h := range a.hits[ctxMRN] {
		if a.tick() {
			return
		}
		w := a.window(h, 40)
		if m := mrnRe.FindStringSubmatchIndex(w); m != nil {
			start, end := h.end+m[2], h.end+m[3]
			if !a.wordChar(end) {
				a.emit(MRN, 0.85, start, end)
			}
		}
		if len(a.s.accounts) == 0 {
			continue
		}
		skip := fillerRe.FindStringIndex(w)
		base := h.end + skip[1]
		end := base + 40
		if end > len(a.text) {
			end = len(a.text)
		}
		for _, p := range a.s.accounts {
			if p.anywhere {
				continue
			}
			if m := p.re.FindStringIndex(a.text[base:end]); m != nil && m[0] == 0 && m[1] > 0 && !a.wordChar(base+m[1]) {
				a.emit(MRN, 0.9, base, base+m[1])
			}
		}
	}
	for _, p := range a.s.accounts {
		if !p.anywhere {
			continue
		}
		for _, m := range p.re.FindAllStringIndex(a.text, -1) {
			if a.tick() {
				return
			}
			if m[1] > m[0] && a.boundedAt(m[0], m[1]) {
				a.emit(MRN, a.adjust(0.75, 0.15, ctxMRN, m[0], m[1]), m[0], m[1])
			}
		}
	}
}

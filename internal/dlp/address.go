package dlp

import (
	"unicode"
	"unicode/utf8"
)

// addresses finds US street addresses: a house number, one to four street
// name words, and a street suffix (USPS Publication 28, Appendix C1),
// read backwards from each suffix. "12 Oak Street", "1600 Pennsylvania
// Ave NW", "350 5th Ave". A unit ("Apt 4B", "Suite 200") or a state and
// ZIP code after it raises the confidence.
func (a *analysis) addresses() {
	for _, h := range a.hits[ctxStreet] {
		if a.tick() {
			return
		}
		k := h.w0
		// A lower-case street name only before a lower-case suffix
		// written in full: "12 oak street", not "12 covers Street".
		full := streetWords[a.key(k)] && !isUpper(a.text[h.start])
		names, j := 0, k-1
		for ; j >= 0 && names <= 4; j-- {
			if !a.sameLine(j) {
				break
			}
			if names > 0 && a.houseNumber(j) {
				break
			}
			if !a.streetName(j, full && names == 0) {
				break
			}
			names++
		}
		if j < 0 || names == 0 || names > 4 || !a.sameLine(j) || !a.houseNumber(j) {
			continue
		}
		start := a.words[j].start
		if a.attachedBefore(start) != free {
			continue
		}
		conf := 0.6
		switch {
		case a.stateZIPAfter(k):
			conf = 0.85
		case a.near(ctxUnit, h.start, h.end, 0, 8):
			conf = 0.7
		}
		a.emit(Address, conf, start, h.end)
	}
}

// sameLine reports whether words j and j+1 are separated by spaces only
// (or a '.' after an abbreviation), as within a street address.
func (a *analysis) sameLine(j int) bool {
	gap := a.text[a.words[j].end:a.words[j+1].start]
	if len(gap) == 0 || len(gap) > 3 {
		return false
	}
	for i := 0; i < len(gap); i++ {
		if gap[i] != ' ' && gap[i] != '\t' && !(gap[i] == '.' && i == 0) {
			return false
		}
	}
	return true
}

// houseNumber: 1 to 6 digits, optionally one letter ("221B").
func (a *analysis) houseNumber(j int) bool {
	w := a.words[j]
	s := a.text[w.start:w.end]
	n := len(s)
	if n > 1 && isLetter(s[n-1]) {
		n--
	}
	if n < 1 || n > 6 {
		return false
	}
	for i := 0; i < n; i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s[0] != '0'
}

// streetName: a capitalised word, an ordinal ("5th"), or, before a suffix
// written in full, a lower-case word.
func (a *analysis) streetName(j int, full bool) bool {
	w := a.words[j]
	s := a.text[w.start:w.end]
	if isUpper(s[0]) {
		return true
	}
	if isDigit(s[0]) {
		n := len(s)
		if n < 3 {
			return false
		}
		suf := a.lower[w.end-2 : w.end]
		for i := 0; i < n-2; i++ {
			if !isDigit(s[i]) {
				return false
			}
		}
		return suf == "st" || suf == "nd" || suf == "rd" || suf == "th"
	}
	if !w.ascii {
		r, _ := utf8.DecodeRuneInString(s)
		return unicode.IsUpper(r)
	}
	return full && len(s) > 2 && !stopWords[a.lower[w.start:w.end]]
}

// stopWords never name a street: "3 blocks down the street".
var stopWords = map[string]bool{
	"the": true, "this": true, "that": true, "our": true, "your": true, "my": true,
	"his": true, "her": true, "their": true, "its": true, "and": true, "for": true,
}

// stateZIPAfter reports a two-letter state and a ZIP code within the few
// words after the suffix: "..., Springfield, IL 62704".
func (a *analysis) stateZIPAfter(k int) bool {
	for j := k + 1; j < len(a.words) && j <= k+6; j++ {
		w := a.words[j]
		if w.start-a.words[k].end > 48 {
			return false
		}
		s := a.text[w.start:w.end]
		if len(s) == 2 && isUpper(s[0]) && isUpper(s[1]) && j+1 < len(a.words) {
			z := a.words[j+1]
			zs := a.text[z.start:z.end]
			if len(zs) == 5 && allDigits(zs) && z.start-w.end <= 2 {
				return true
			}
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

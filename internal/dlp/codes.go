package dlp

import (
	_ "embed"
	"strings"
)

// Alphanumeric identifiers: Medicare MBI, DEA number, ICD-10-CM code.

//go:embed icd10cm.txt
var icd10List string

// icdCodes holds the shipped ICD-10-CM codes (with their dot) and the
// three-character categories they belong to.
type icdCodes struct {
	codes      map[string]bool
	categories map[string]bool
}

func loadICD() icdCodes {
	c := icdCodes{codes: map[string]bool{}, categories: map[string]bool{}}
	for _, line := range strings.Split(icd10List, "\n") {
		code, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if code == "" || strings.HasPrefix(code, "#") {
			continue
		}
		c.codes[code] = true
		c.categories[code[:3]] = true
	}
	return c
}

// codes checks each word for the alphanumeric formats.
func (a *analysis) codes() {
	for i, w := range a.words {
		if a.tick() {
			return
		}
		if !w.ascii {
			continue
		}
		switch w.end - w.start {
		case 11:
			a.mbi(w.start, w.end, a.text[w.start:w.end])
		case 4:
			a.dashedMBI(i)
			a.icd(i)
		case 9:
			a.dea(w.start, w.end)
		case 3, 5, 6, 7:
			a.icd(i)
		}
	}
}

// mbiLetters are the letters an MBI uses: A-Z without S, L, O, I, B, Z.
const mbiLetters = "ACDEFGHJKMNPQRTUVWXY"

// validMBI applies the CMS Medicare Beneficiary Identifier format (CMS,
// "Understanding the Medicare Beneficiary Identifier (MBI) Format"): 11
// characters; positions 1, 4, 7, 10 and 11 numeric (position 1 not 0);
// 2, 5, 8 and 9 alphabetic; 3 and 6 alphanumeric; letters from
// mbiLetters. Case is folded so lower case cannot hide one.
func validMBI(s string) bool {
	if len(s) != 11 {
		return false
	}
	s = strings.ToUpper(s)
	num := func(c byte) bool { return isDigit(c) }
	alpha := func(c byte) bool { return strings.IndexByte(mbiLetters, c) >= 0 }
	an := func(c byte) bool { return num(c) || alpha(c) }
	rules := [11]func(byte) bool{num, alpha, an, num, alpha, an, num, alpha, alpha, num, num}
	for i, rule := range rules {
		if !rule(s[i]) {
			return false
		}
	}
	return s[0] != '0'
}

func (a *analysis) mbi(start, end int, s string) {
	if !validMBI(s) {
		return
	}
	conf := 0.8
	if strings.ToUpper(s) != s {
		conf = 0.4 // CMS prints MBIs in capitals
	}
	a.emit(MBI, a.adjust(conf, 0.15, ctxMBI, start, end), start, end)
}

// dashedMBI reads the 4-3-4 form CMS shows on cards ("1EG4-TE5-MK73").
func (a *analysis) dashedMBI(i int) {
	if i+2 >= len(a.words) {
		return
	}
	w0, w1, w2 := a.words[i], a.words[i+1], a.words[i+2]
	if !w1.ascii || !w2.ascii || w1.end-w1.start != 3 || w2.end-w2.start != 4 ||
		w1.start != w0.end+1 || w2.start != w1.end+1 || a.text[w0.end] != '-' || a.text[w1.end] != '-' {
		return
	}
	t := a.text
	a.mbi(w0.start, w2.end, t[w0.start:w0.end]+t[w1.start:w1.end]+t[w2.start:w2.end])
}

// dea checks a DEA registration number (registration under 21 CFR 1301;
// the check-digit rule is the DEA's, as pharmacies verify it): a
// registrant-type letter, a second letter (the registrant's
// surname initial) or 9, and seven digits where the last digit of
// (d1+d3+d5) + 2(d2+d4+d6) is d7.
func (a *analysis) dea(start, end int) {
	s := a.text[start:end]
	if !validDEA(s) {
		return
	}
	conf := 0.6
	if strings.ToUpper(s) != s {
		conf = 0.3
	}
	a.emit(DEA, a.adjust(conf, 0.35, ctxDEA, start, end), start, end)
}

func validDEA(s string) bool {
	if len(s) != 9 {
		return false
	}
	u := strings.ToUpper(s)
	if strings.IndexByte("ABCDEFGHJKLMPRSTUX", u[0]) < 0 || !(isUpper(u[1]) || u[1] == '9') {
		return false
	}
	for i := 2; i < 9; i++ {
		if !isDigit(u[i]) {
			return false
		}
	}
	v := func(i int) int { return int(u[i] - '0') }
	sum := v(2) + v(4) + v(6) + 2*(v(3)+v(5)+v(7))
	return sum%10 == v(8)
}

// icdShape reports whether s is an ICD-10-CM category: a letter, a digit,
// and a digit or letter (ICD-10-CM Tabular List, CDC/NCHS: codes are 3 to
// 7 characters, a category of three, a dot, then up to four more). Letters in the third place exist only
// in a few categories (C4A, D3A, M1A, O9A, Z3A), so they must be listed.
func (a *analysis) icdShape(s string, cats map[string]bool) bool {
	if len(s) != 3 || !isUpper(s[0]) || !isDigit(s[1]) {
		return false
	}
	if isDigit(s[2]) {
		return true
	}
	return isUpper(s[2]) && cats[s]
}

// icd checks word i for an ICD-10-CM code: the category, then after a
// dot one to four characters ("E11.9", "S72.001A"), or, next to a
// diagnosis word only, the same without the dot ("E119").
func (a *analysis) icd(i int) {
	w := a.words[i]
	s := a.text[w.start:w.end]
	if !isLetter(s[0]) || !isDigit(s[1]) {
		return
	}
	cat := strings.ToUpper(s[:3])
	if !isUpper(s[0]) && !a.near(ctxICD, w.start, w.end, ctxBefore, ctxAfter) {
		return // lower case only next to a diagnosis word
	}
	icd := a.s.icd
	if !a.icdShape(cat, icd.categories) {
		return
	}
	if len(s) > 3 {
		// Undotted, as on claims: only in context.
		code := cat + "." + strings.ToUpper(s[3:])
		if a.attachedBefore(w.start) != free || a.attachedAfter(w.end) != free ||
			!a.near(ctxICD, w.start, w.end, ctxBefore, ctxAfter) || !alnumString(s[3:]) {
			return
		}
		conf := 0.5
		switch {
		case icd.codes[code]:
			conf = 0.8
		case icd.categories[cat]:
			conf = 0.65
		}
		a.emit(ICD10, conf, w.start, w.end)
		return
	}
	start, end := w.start, w.end
	dotted := false
	if i+1 < len(a.words) {
		n := a.words[i+1]
		if n.ascii && n.start == w.end+1 && a.text[w.end] == '.' && n.end-n.start <= 4 {
			dotted, end = true, n.end
		}
	}
	if a.attachedBefore(start) != free || a.attachedAfter(end) != free {
		return
	}
	var conf float64
	code := strings.ToUpper(a.text[start:end])
	switch {
	case dotted && icd.codes[code]:
		conf = 0.75
	case dotted && icd.categories[cat]:
		conf = 0.55
	case dotted:
		conf = 0.3
	case icd.codes[cat] || icd.categories[cat]:
		conf = 0.4
	default:
		conf = 0.15
	}
	a.emit(ICD10, a.adjust(conf, 0.35, ctxICD, start, end), start, end)
}

func alnumString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

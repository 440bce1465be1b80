package dlp

import (
	_ "embed"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ctxKind is a kind of context keyword. A keyword near a candidate raises
// (or, for ctxNegative, lowers) its confidence; some detectors only look
// next to their keywords.
type ctxKind int

const (
	ctxSSN ctxKind = iota
	ctxMBI
	ctxMRN
	ctxNPI
	ctxDEA
	ctxICD
	ctxCPT
	ctxDOB
	ctxCard
	ctxABA
	ctxPhone
	ctxNegative
	ctxStreet
	ctxUnit
	numCtx
)

// keywords are the built-in context words, matched on word boundaries
// without regard to case; punctuation between words is free ("D.O.B."
// matches "d o b", "date-of-birth" matches "date of birth"). A trailing
// '#' must follow the last word directly.
var keywords = map[ctxKind][]string{
	ctxSSN: {"ssn", "ssn#", "ss#", "ss", "social security", "social security number", "soc sec", "ssa number"},
	ctxMBI: {"mbi", "medicare", "medicare id", "medicare number", "beneficiary id", "hicn"},
	ctxMRN: {"mrn", "mr#", "medical record", "medical record number", "med rec", "record number",
		"chart", "chart#", "chart number", "patient id", "patient number", "patient no", "pt id", "emr id", "ehr id"},
	ctxNPI: {"npi", "npi#", "national provider identifier", "npi number"},
	ctxDEA: {"dea", "dea#", "dea number", "dea registration"},
	ctxICD: {"icd", "icd 10", "icd10", "icd 10 cm", "diagnosis", "diagnoses", "diagnosed", "dx",
		"diag", "diagnosis code", "diagnostic code", "problem list", "assessment"},
	ctxCPT: {"cpt", "cpt code", "cpt codes", "procedure", "procedures", "procedure code", "proc code", "hcpcs", "billing code"},
	ctxDOB: {"dob", "d o b", "date of birth", "birth date", "birthdate", "born", "birthday", "born on"},
	ctxCard: {"card", "credit", "debit", "visa", "mastercard", "master card", "amex", "american express",
		"discover", "cc", "pan", "card number", "cardholder", "jcb", "diners"},
	ctxABA:   {"routing", "routing number", "aba", "aba#", "rtn", "transit", "ach", "bank", "wire"},
	ctxPhone: {"phone", "tel", "telephone", "call", "cell", "mobile", "fax", "ph", "contact", "text", "pager", "dial"},
	ctxNegative: {"order", "tracking", "invoice", "inv", "po", "purchase order", "sku", "part", "serial",
		"model", "item", "ref", "reference", "confirmation", "conf", "ticket", "shipment", "package",
		"parcel", "fedex", "ups", "usps", "dhl", "product", "catalog", "lot", "batch", "isbn", "upc",
		"ean", "version", "build", "receipt", "transaction", "txn", "coupon", "promo", "voucher",
		"booking", "reservation", "flight", "firmware", "size"},
	ctxStreet: {"street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln",
		"drive", "dr", "court", "ct", "way", "place", "pl", "terrace", "parkway", "pkwy", "highway",
		"hwy", "circle", "cir", "square", "trail", "alley", "plaza", "loop", "pike", "crescent"},
	ctxUnit: {"apt", "apartment", "suite", "ste", "unit", "floor", "fl"},
}

// streetWords are the suffixes written out in full; before them a street
// name may be in lower case ("12 oak street").
var streetWords = map[string]bool{
	"street": true, "avenue": true, "road": true, "boulevard": true, "lane": true, "drive": true,
	"court": true, "terrace": true, "parkway": true, "highway": true, "circle": true, "trail": true,
}

//go:embed terms.txt
var builtinTerms string

// maxPhraseBytes bounds how far before a candidate a keyword may start.
const maxPhraseBytes = 64

// phrase is a keyword or dictionary term split into lowercased words.
type phrase struct {
	kind  ctxKind // numCtx for a dictionary term
	rest  []string
	trail byte
	// account marks a term from the account's own dictionary.
	account bool
}

// dictionary maps a phrase's first word to the phrases starting with it.
type dictionary struct {
	first map[string][]phrase
	seen  map[string]bool // kind, trail and words of every phrase, to drop duplicates
}

func newDictionary(accountTerms []string, builtin bool) (*dictionary, error) {
	d := &dictionary{first: map[string][]phrase{}, seen: map[string]bool{}}
	for k, list := range keywords {
		for _, kw := range list {
			d.add(kw, k, false)
		}
	}
	if builtin {
		for _, line := range strings.Split(builtinTerms, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			d.add(line, numCtx, false)
		}
	}
	if len(accountTerms) > maxTerms {
		return nil, &OptionError{Field: "terms", Message: fmt.Sprintf("at most %d terms", maxTerms)}
	}
	for i, t := range accountTerms {
		n := Normalise(strings.TrimSpace(t))
		if len(n) < 2 || len(n) > maxTermLen || !utf8.ValidString(t) || !hasLetter(n) {
			return nil, &OptionError{Field: fmt.Sprintf("terms[%d]", i), Message: fmt.Sprintf("2 to %d bytes of UTF-8 with at least one letter", maxTermLen)}
		}
		d.add(n, numCtx, true)
	}
	return d, nil
}

func hasLetter(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// add splits s into words as tokenise does and files it under the first.
func (d *dictionary) add(s string, k ctxKind, account bool) {
	p := phrase{kind: k, account: account}
	if strings.HasSuffix(s, "#") {
		p.trail = '#'
	}
	ws := splitWords(strings.ToLower(s))
	if len(ws) == 0 {
		return
	}
	p.rest = ws[1:]
	id := fmt.Sprintf("%d %c %t %s", k, p.trail, account, strings.Join(ws, " "))
	if d.seen[id] {
		return
	}
	d.seen[id] = true
	d.first[ws[0]] = append(d.first[ws[0]], p)
}

func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// key is word i as a dictionary key: lowercased.
func (a *analysis) key(i int) string {
	w := a.words[i]
	if w.ascii {
		return a.lower[w.start:w.end]
	}
	return strings.ToLower(a.text[w.start:w.end])
}

// joined reports whether words i and i+1 are close enough to be read as
// one phrase: at most four bytes apart, with only spaces and the
// punctuation people put inside phrases between them.
func (a *analysis) joined(i int) bool {
	if i+1 >= len(a.words) {
		return false
	}
	gap := a.text[a.words[i].end:a.words[i+1].start]
	if len(gap) > 4 {
		return false
	}
	for j := 0; j < len(gap); j++ {
		switch gap[j] {
		case ' ', '\t', '\n', '\r', '-', '.', '\'', '/':
		default:
			return false
		}
	}
	return true
}

// matchPhrases records context keyword hits and emits dictionary terms.
// Where terms overlap, the longest starting first wins ("type 2 diabetes"
// hides "diabetes"); of two as long, the account's own term wins, so it
// is reported as an AccountTerm.
func (a *analysis) matchPhrases() {
	termEnd := -1
	for i := range a.words {
		if a.tick() {
			return
		}
		ps := a.s.dict.first[a.key(i)]
		if len(ps) == 0 {
			continue
		}
		bestEnd, bestAccount := -1, false
		for _, p := range ps {
			last, ok := a.matchRest(i, p)
			if !ok {
				continue
			}
			h := hit{start: a.words[i].start, end: a.words[last].end, w0: i, w1: last}
			if p.trail != 0 {
				h.end++
			}
			if p.kind != numCtx {
				a.hits[p.kind] = append(a.hits[p.kind], h)
				continue
			}
			if h.end > bestEnd || (h.end == bestEnd && p.account) {
				bestEnd, bestAccount = h.end, p.account
			}
		}
		if bestEnd > 0 && a.words[i].start >= termEnd {
			t := ClinicalTerm
			if bestAccount {
				t = AccountTerm
			}
			a.emit(t, 0.6, a.words[i].start, bestEnd)
			termEnd = bestEnd
		}
	}
}

// matchRest matches the words after the first; it returns the index of
// the last word of the match.
func (a *analysis) matchRest(i int, p phrase) (int, bool) {
	last := i
	for _, w := range p.rest {
		if !a.joined(last) || a.key(last+1) != w {
			return 0, false
		}
		last++
	}
	if p.trail != 0 {
		end := a.words[last].end
		if end >= len(a.text) || a.text[end] != p.trail {
			return 0, false
		}
	}
	return last, true
}

package dlp

import (
	"context"
	"sort"
	"unicode"
	"unicode/utf8"
)

// analysis is the scan of one part's normalised text. Every detector runs
// over the same precomputed views: the ASCII-lowercased bytes, the words,
// and where each kind of context keyword occurs.
type analysis struct {
	ctx      context.Context
	s        *Scanner
	text     string
	lower    string // text with ASCII letters lowercased; same offsets
	words    []word
	hits     [numCtx][]hit
	findings []Finding
	overflow map[Type]int // findings beyond the per-part bound, counted only
	err      error        // set when the context ends; detectors then stop
	ticks    int
}

// word is a maximal run of letters and digits.
type word struct {
	start, end int
	ascii      bool
}

// hit is an occurrence of a context keyword, covering words [w0, w1].
type hit struct {
	start, end int
	w0, w1     int
}

func newAnalysis(ctx context.Context, s *Scanner, text string) *analysis {
	a := &analysis{ctx: ctx, s: s, text: text}
	a.lower = asciiLower(text)
	return a
}

// run runs every detector. It stops early, with a.err set, when the
// context ends.
func (a *analysis) run() {
	steps := []func(){
		a.tokenise,
		a.matchPhrases,
		a.numbers,
		a.codes,
		a.datesOfBirth,
		a.procedureCodes,
		a.recordNumbers,
		a.addresses,
	}
	for _, step := range steps {
		if a.done() {
			return
		}
		step()
	}
	a.dedupe()
}

// tick is called in long loops; every 1024 calls it checks the context.
func (a *analysis) tick() bool {
	a.ticks++
	if a.ticks&1023 == 0 {
		return a.done()
	}
	return a.err != nil
}

func (a *analysis) done() bool {
	if a.err == nil {
		a.err = a.ctx.Err()
	}
	return a.err != nil
}

func (a *analysis) emit(t Type, conf float64, start, end int) {
	if len(a.findings) >= 2*a.s.opts.MaxFindings {
		if a.overflow == nil {
			a.overflow = map[Type]int{}
		}
		a.overflow[t]++
		return
	}
	if conf < 0.05 {
		conf = 0.05
	}
	if conf > 0.99 {
		conf = 0.99
	}
	a.findings = append(a.findings, Finding{Type: t, Confidence: round2(conf), Offset: start, Length: end - start})
}

// asciiLower lowercases ASCII letters only, so byte offsets are kept.
func asciiLower(s string) string {
	i := 0
	for i < len(s) && !isUpper(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if isUpper(b[i]) {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

// dedupe drops a finding contained in another of the same type (a phone
// number found with and without its leading 1, a term inside a longer
// term), keeping the more confident.
func (a *analysis) dedupe() {
	f := a.findings
	sort.SliceStable(f, func(i, j int) bool {
		if f[i].Type != f[j].Type {
			return f[i].Type < f[j].Type
		}
		if f[i].Offset != f[j].Offset {
			return f[i].Offset < f[j].Offset
		}
		return f[i].Length > f[j].Length
	})
	out := f[:0]
	for _, x := range f {
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.Type == x.Type && x.Offset+x.Length <= p.Offset+p.Length {
				if x.Confidence > p.Confidence {
					p.Confidence = x.Confidence
				}
				continue
			}
		}
		out = append(out, x)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	a.findings = out
}

// tokenise finds the words: runs of ASCII letters and digits, or of
// Unicode letters, digits and marks.
func (a *analysis) tokenise() {
	t := a.text
	a.words = make([]word, 0, len(t)/6+8) // English averages about six bytes a word
	for i := 0; i < len(t); {
		if a.tick() {
			return
		}
		c := t[i]
		if c < utf8.RuneSelf && !isAlnum(c) {
			i++
			continue
		}
		start, ascii := i, true
		for i < len(t) {
			c := t[i]
			if c < utf8.RuneSelf {
				if !isAlnum(c) {
					break
				}
				i++
				continue
			}
			r, n := utf8.DecodeRuneInString(t[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
				break
			}
			ascii = false
			i += n
		}
		if i == start {
			// A non-ASCII character that is not a letter.
			_, n := utf8.DecodeRuneInString(t[i:])
			i += n
			continue
		}
		a.words = append(a.words, word{start: start, end: i, ascii: ascii})
	}
}

// near reports whether a keyword of kind k ends within before bytes ahead
// of [start, end) or starts within after bytes behind it.
func (a *analysis) near(k ctxKind, start, end, before, after int) bool {
	hs := a.hits[k]
	lo := start - before - maxPhraseBytes
	i := sort.Search(len(hs), func(i int) bool { return hs[i].start >= lo })
	for ; i < len(hs) && hs[i].start <= end+after; i++ {
		h := hs[i]
		if h.end <= start && h.end >= start-before {
			return true
		}
		if h.start >= end && h.start <= end+after {
			return true
		}
	}
	return false
}

// Context windows, in bytes.
const (
	ctxBefore = 48
	ctxAfter  = 24
	negBefore = 32
)

// adjust applies context to a base confidence: a positive keyword nearby
// adds boost; failing that, a negative one ("order", "tracking",
// "invoice"...) takes 0.4 off.
func (a *analysis) adjust(conf, boost float64, k ctxKind, start, end int) float64 {
	if a.near(k, start, end, ctxBefore, ctxAfter) {
		return conf + boost
	}
	if a.near(ctxNegative, start, end, negBefore, 0) {
		return conf - 0.4
	}
	return conf
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLetter(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isAlnum(c byte) bool { return isDigit(c) || isLetter(c) }

// wordChar reports whether the byte at i belongs to a word (so a match
// next to it would be part of a longer token).
func (a *analysis) wordChar(i int) bool {
	if i < 0 || i >= len(a.text) {
		return false
	}
	c := a.text[i]
	if c < utf8.RuneSelf {
		return isAlnum(c) || c == '_'
	}
	// Back up to the start of the rune.
	for i > 0 && !utf8.RuneStart(a.text[i]) {
		i--
	}
	r, _ := utf8.DecodeRuneInString(a.text[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// boundedAt reports whether [start, end) stands on its own: no word
// character touches either end.
func (a *analysis) boundedAt(start, end int) bool {
	return !a.wordChar(start-1) && !a.wordChar(end)
}

package dlp

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// corpusCase is one labelled snippet of testdata/corpus.tsv.
type corpusCase struct {
	line   int
	batch  int // 1: written with the detectors; 2: written after they were frozen
	part   PartKind
	expect map[Type]bool
	text   string
}

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	f, err := os.Open("testdata/corpus.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusCase
	sc := bufio.NewScanner(f)
	batch := 1
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "# ===") {
			batch++
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.SplitN(line, "\t", 3)
		if len(fields) != 3 {
			t.Fatalf("corpus.tsv:%d: want 3 tab-separated fields", n)
		}
		c := corpusCase{line: n, batch: batch, part: PartKind(fields[0]), expect: map[Type]bool{}, text: unescapeCorpus(t, n, fields[2])}
		if fields[1] != "-" {
			for _, ty := range strings.Split(fields[1], ",") {
				if !knownType(Type(ty)) {
					t.Fatalf("corpus.tsv:%d: unknown type %q", n, ty)
				}
				c.expect[Type(ty)] = true
			}
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func knownType(t Type) bool {
	for _, x := range Types {
		if x == t {
			return true
		}
	}
	return false
}

// unescapeCorpus decodes \uXXXX so invisible characters stay visible in
// the file.
func unescapeCorpus(t testing.TB, line int, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+6 <= len(s) && s[i+1] == 'u' {
			r, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
			if err != nil {
				t.Fatalf("corpus.tsv:%d: bad escape", line)
			}
			b.WriteRune(rune(r))
			i += 5
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (c corpusCase) message() Message {
	switch c.part {
	case PartHTML:
		return Message{HTML: c.text}
	case PartSubject:
		return Message{Subject: c.text}
	}
	return Message{Text: c.text}
}

// fixedNow is the clock of every test, so date-of-birth rules do not move.
func fixedNow() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }

type tally struct{ tp, fp, fn int }

func (t tally) precision() float64 {
	if t.tp+t.fp == 0 {
		return 1
	}
	return float64(t.tp) / float64(t.tp+t.fp)
}

func (t tally) recall() float64 {
	if t.tp+t.fn == 0 {
		return 1
	}
	return float64(t.tp) / float64(t.tp+t.fn)
}

// TestCorpusPrecisionRecall measures every detector on the labelled
// corpus: a type counts as detected in a snippet when some finding of it
// reaches Likely confidence. Run with -v for the table.
func TestCorpusPrecisionRecall(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	cases := loadCorpus(t)
	if len(cases) < 150 {
		t.Fatalf("corpus has %d snippets, want at least 150", len(cases))
	}
	per := map[Type]*tally{}
	for _, ty := range Types {
		per[ty] = &tally{}
	}
	var all tally
	batches := map[int]*tally{1: {}, 2: {}}
	negatives, cleanNegatives := 0, 0
	for _, c := range cases {
		res := s.Scan(context.Background(), c.message())
		got := map[Type]bool{}
		for _, f := range res.Findings {
			if f.Confidence >= Likely {
				got[f.Type] = true
			}
		}
		for _, ty := range Types {
			switch {
			case got[ty] && c.expect[ty]:
				per[ty].tp++
				all.tp++
				batches[c.batch].tp++
			case got[ty]:
				per[ty].fp++
				all.fp++
				batches[c.batch].fp++
				t.Logf("false positive %s at corpus.tsv:%d", ty, c.line)
			case c.expect[ty]:
				per[ty].fn++
				all.fn++
				batches[c.batch].fn++
				t.Logf("missed %s at corpus.tsv:%d", ty, c.line)
			}
		}
		if len(c.expect) == 0 {
			negatives++
			if !res.ContainsPHI {
				cleanNegatives++
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| detector | TP | FP | FN | precision | recall |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, ty := range Types {
		p := per[ty]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.2f | %.2f |\n", ty, p.tp, p.fp, p.fn, p.precision(), p.recall())
	}
	fmt.Fprintf(&b, "| **overall** | %d | %d | %d | **%.3f** | **%.3f** |\n", all.tp, all.fp, all.fn, all.precision(), all.recall())
	for _, n := range []int{1, 2} {
		bt := batches[n]
		fmt.Fprintf(&b, "| batch %d | %d | %d | %d | %.3f | %.3f |\n", n, bt.tp, bt.fp, bt.fn, bt.precision(), bt.recall())
	}
	fmt.Fprintf(&b, "\n%d snippets, %d hard negatives (%d of them judged free of PHI by ContainsPHI)\n", len(cases), negatives, cleanNegatives)
	t.Log(b.String())

	if all.precision() < 0.9 || all.recall() < 0.9 {
		t.Errorf("overall precision %.3f, recall %.3f: want both >= 0.9", all.precision(), all.recall())
	}
	for _, ty := range Types {
		if p := per[ty]; p.precision() < 0.75 || p.recall() < 0.75 {
			t.Errorf("%s: precision %.2f, recall %.2f: want both >= 0.75", ty, p.precision(), p.recall())
		}
	}
}

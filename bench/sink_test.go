package bench

import (
	"strconv"
	"testing"
)

func TestSinkReadsTheMessageNumberFromTheRecipient(t *testing.T) {
	for _, c := range []struct {
		name, rcpt string
		seq        int
		ok         bool
	}{
		{"a bench recipient carries its number", "p42@d2.example", 42, true},
		{"number zero is a message", "p0@d0.example", 0, true},
		{"a bounce to the sender is not", "reminders@clinic.example", 0, false},
		{"no number", "p@d0.example", 0, false},
		{"a negative number is not", "p-1@d0.example", 0, false},
		{"no domain", "p42", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			seq, ok := seqOf(c.rcpt)
			if ok != c.ok || (ok && seq != c.seq) {
				t.Fatalf("seqOf(%q) = %d, %v", c.rcpt, seq, ok)
			}
		})
	}
}

func FuzzSeqOf(f *testing.F) {
	for _, s := range []string{"p1@d1.example", "reminders@clinic.example", "p@", "p99999999999999999999@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rcpt string) {
		seq, ok := seqOf(rcpt)
		if ok && (seq < 0 || benchRcpt(seq, 1)[:len(strconv.Itoa(seq))+1] != "p"+strconv.Itoa(seq)) {
			t.Fatalf("seqOf(%q) = %d", rcpt, seq)
		}
	})
}

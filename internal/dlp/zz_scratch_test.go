package dlp

import (
	"context"
	"fmt"
	"testing"
)

func TestScratch(t *testing.T) {
	s, err := New(Options{})
	if err != nil { t.Fatal(err) }
	for _, txt := range []string{
		"Patient SSN 219-45-6789, DOB: 03/14/1962, MRN 00482913. Dx E11.9 and I10. Call (415) 555-2671.",
		"Medicare MBI 1EG4-TE5-MK73, NPI 1234567893, DEA AB1234563, card 4539 1488 0343 6467",
		"Routing number 021000021 account 123. Lives at 742 Evergreen Terrace, Springfield, IL 62704. CPT 99213.",
		"Order 123-45-6789 shipped via UPS 1Z999AA10123456784. Tracking 9400 1000 0000 0000 0000 00",
		"She takes metformin for type 2 diabetes.",
	} {
		r := s.Scan(context.Background(), Message{Text: txt})
		fmt.Printf("%s\n  score=%.2f phi=%v\n", txt, r.Score, r.ContainsPHI)
		for _, f := range r.Findings {
			fmt.Printf("  %-14s %.2f %q\n", f.Type, f.Confidence, Normalise(txt)[f.Offset:f.Offset+f.Length])
		}
	}
}

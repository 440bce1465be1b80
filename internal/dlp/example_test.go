package dlp_test

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost/internal/dlp"
)

func ExampleScanner_Scan() {
	s, err := dlp.New(dlp.Options{})
	if err != nil {
		panic(err)
	}
	res := s.Scan(context.Background(), dlp.Message{
		Subject: "Your results",
		Text:    "Patient SSN 205-89-4542, diagnosis E11.9.",
	})
	for _, f := range res.Findings {
		fmt.Printf("%s in %s at %d+%d (confidence %.2f)\n", f.Type, f.Part, f.Offset, f.Length, f.Confidence)
	}
	fmt.Println("score", res.Score, "PHI", res.ContainsPHI)
	// Output:
	// ssn in text at 12+11 (confidence 0.99)
	// icd10 in text at 35+5 (confidence 0.99)
	// score 1 PHI true
}

func ExampleScanner_Scan_unscannable() {
	s, _ := dlp.New(dlp.Options{})
	res := s.Scan(context.Background(), dlp.Message{
		Text:        "Please see the attached scan.",
		Attachments: []dlp.Attachment{{Filename: "scan.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7")}},
	})
	fmt.Println(res.Unscannable, res.Reason, res.ContainsPHI)
	// Output: true unreadable_type true
}

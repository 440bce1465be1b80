package dlp

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// benchMessage is a 20 KB message shaped like a lab-results notice: a
// plain text body, an HTML body with a table, a CSV attachment in base64
// and a JSON attachment, with a few identifiers among ordinary prose.
func benchMessage() (Message, int) {
	prose := "Thank you for choosing our clinic. Your results are available in the portal; " +
		"please review them before your next visit and call us with any questions. "
	var text strings.Builder
	for text.Len() < 6600 {
		text.WriteString(prose)
		if text.Len()%7 == 0 {
			text.WriteString("Order 4821 shipped. ")
		}
	}
	text.WriteString("\nPatient: A. Example, DOB 03/14/1962, MRN 00482913. Call (415) 867-5309.\n")

	var html strings.Builder
	html.WriteString("<html><body><h1>Your results</h1><table>")
	for i := 0; html.Len() < 7500; i++ {
		fmt.Fprintf(&html, "<tr><td>Test %d</td><td>%d.%d mg/dL</td><td>normal</td><td>&nbsp;</td></tr>", i, 90+i%20, i%10)
	}
	html.WriteString("</table><p>Dx: E11.9 &mdash; metformin 500 mg</p><p>742 Evergreen Terrace, Springfield, IL 62704</p></body></html>")

	var csv strings.Builder
	csv.WriteString("date,test,value,unit\n")
	for i := 0; csv.Len() < 2700; i++ {
		fmt.Fprintf(&csv, "2026-11-%02d,glucose,%d,mg/dL\n", 1+i%28, 80+i%40)
	}
	csv64 := base64.StdEncoding.EncodeToString([]byte(csv.String()))

	var js strings.Builder
	js.WriteString(`{"results":[`)
	for i := 0; js.Len() < 1800; i++ {
		if i > 0 {
			js.WriteByte(',')
		}
		fmt.Fprintf(&js, `{"code":"%d","name":"panel %d","flag":"N"}`, 1000+i, i)
	}
	js.WriteString(`]}`)

	m := Message{
		Subject: "Your lab results are ready",
		Text:    text.String(),
		HTML:    html.String(),
		Attachments: []Attachment{
			{Filename: "results.csv", ContentType: "text/csv", TransferEncoding: "base64", Content: []byte(csv64)},
			{Filename: "results.json", ContentType: "application/json", Content: []byte(js.String())},
		},
	}
	size := len(m.Subject) + len(m.Text) + len(m.HTML) + len(csv64) + js.Len()
	return m, size
}

func TestBenchMessageIsTwentyKB(t *testing.T) {
	t.Parallel()
	m, size := benchMessage()
	if size < 19000 || size > 21500 {
		t.Fatalf("bench message is %d bytes, want about 20 KB", size)
	}
	s := newTestScanner(t, Options{})
	res := s.Scan(context.Background(), m)
	if res.Unscannable || !res.ContainsPHI || !likely(res, DOB) || !likely(res, ICD10) {
		t.Fatalf("bench message scan: %+v", res)
	}
}

// BenchmarkScan scans the 20 KB message on one goroutine.
func BenchmarkScan(b *testing.B) {
	m, size := benchMessage()
	s := newTestScanner(b, Options{})
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Scan(ctx, m)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkScanParallel scans on GOMAXPROCS goroutines sharing one
// Scanner, as delivery workers would.
func BenchmarkScanParallel(b *testing.B) {
	m, size := benchMessage()
	s := newTestScanner(b, Options{})
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Scan(ctx, m)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkNormaliseUnicode(b *testing.B) {
	in := strings.Repeat("Patient ２０５－８９－４５４２ café\u200b ", 500)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		Normalise(in)
	}
}

func BenchmarkNew(b *testing.B) {
	terms := make([]string, 1000)
	for i := range terms {
		terms[i] = fmt.Sprintf("term number %d", i)
	}
	for b.Loop() {
		if _, err := New(Options{Terms: terms}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanTypographic is the same message with the curly quotes and
// no-break spaces real mail is full of, which take the Unicode path of
// Normalise instead of the ASCII one.
func BenchmarkScanTypographic(b *testing.B) {
	m, size := benchMessage()
	m.Text = strings.ReplaceAll(m.Text, "'", "\u2019")
	m.Text = strings.ReplaceAll(m.Text, ". ", ".\u00a0")
	m.HTML = strings.ReplaceAll(m.HTML, "&nbsp;", "\u00a0")
	s := newTestScanner(b, Options{})
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		s.Scan(ctx, m)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

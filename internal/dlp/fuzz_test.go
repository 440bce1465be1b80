package dlp

import (
	"bytes"
	"context"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzNormalise(f *testing.F) {
	for _, s := range []string{"SSN 205-89-4542", "２０５－８９", "2\u200b0\u00ad5", "e\u0301\u0332", "\xff\xfe", "٢٠٥\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalise(s)
		if !utf8.ValidString(n) {
			t.Fatalf("Normalise(%q) = %q: invalid UTF-8", s, n)
		}
		for _, r := range n {
			if r >= utf8.RuneSelf && unicode.Is(unicode.Cf, r) {
				t.Fatalf("Normalise(%q) = %q keeps format character %U", s, n, r)
			}
		}
		if again := Normalise(n); again != n {
			t.Fatalf("not stable: Normalise(%q) = %q, again %q", s, n, again)
		}
	})
}

func FuzzHTMLText(f *testing.F) {
	for _, s := range []string{"<p>a&amp;b</p>", "<!--", "<td>1</td><td>2", "<img alt='x'>", "<script>1<2</script>", "&#x110000;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := HTMLText(s); err != nil {
			t.Fatalf("HTMLText(%q): %v", s, err)
		}
	})
}

// FuzzScan checks what must hold for any input: no panic, findings inside
// their part's normalised text, scores in range, and the verdict
// consistent with the score.
func FuzzScan(f *testing.F) {
	f.Add("SSN 205-89-4542", "DOB 01/02/1980 MRN 1234567", "<p>E11.9 &#50;05-89-4542</p>", []byte("U1NOIDIwNS04OS00NTQy"), "text/plain", "base64")
	f.Add("", "(415) 867-5309 742 Evergreen Terrace", "<td>4539 1488 0343 6467</td>", []byte(`{"a":"\u0031"}`), "application/json", "")
	f.Add("x", "CPT 99213 NPI 1234567893 DEA AB1234563 1EG4-TE5-MK73", "", []byte("<a>&amp;</a>"), "text/xml", "quoted-printable")
	s, err := New(Options{Now: fixedNow, MRNPatterns: []MRNPattern{{Pattern: `[A-Z]{2}\d{4,}`, Anywhere: true}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, subject, text, html string, att []byte, ct, enc string) {
		m := Message{Subject: subject, Text: text, HTML: html,
			Attachments: []Attachment{{Filename: "a", ContentType: ct, TransferEncoding: enc, Content: att}}}
		res := s.Scan(context.Background(), m)
		if res.Score < 0 || res.Score > 1 {
			t.Fatalf("score %v", res.Score)
		}
		if res.ContainsPHI != (res.Unscannable || res.Score >= 0.5) {
			t.Fatalf("verdict %v inconsistent with score %v", res.ContainsPHI, res.Score)
		}
		htmlText, _ := HTMLText(html)
		lengths := map[PartKind]int{
			PartSubject: len(Normalise(subject)),
			PartText:    len(Normalise(text)),
			PartHTML:    len(Normalise(htmlText)),
		}
		for _, fd := range res.Findings {
			if fd.Confidence <= 0 || fd.Confidence > 1 || fd.Length <= 0 || fd.Offset < 0 {
				t.Fatalf("bad finding %+v", fd)
			}
			if n, ok := lengths[fd.Part]; ok && fd.Offset+fd.Length > n {
				t.Fatalf("finding %+v outside its part (%d bytes)", fd, n)
			}
		}
		if again := s.Scan(context.Background(), m); len(again.Findings) != len(res.Findings) || again.Score != res.Score {
			t.Fatalf("scan is not deterministic")
		}
	})
}

// FuzzScanRaw feeds arbitrary bytes to the MIME walker: it must never
// panic, and whatever it cannot parse must come out unscannable, never
// clean by accident.
func FuzzScanRaw(f *testing.F) {
	f.Add([]byte("Subject: hi\r\n\r\nSSN 205-89-4542\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nU1NO\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n<p>&#50;</p>\r\n"))
	s, err := New(Options{Now: fixedNow, MaxPartBytes: 1 << 16, MaxAttachments: 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		res := s.ScanRaw(context.Background(), bytes.NewReader(raw))
		if res.Unscannable && (!res.ContainsPHI || res.Reason == "") {
			t.Fatalf("unscannable result not PHI: %+v", res)
		}
		if res.Score < 0 || res.Score > 1 {
			t.Fatalf("score %v", res.Score)
		}
	})
}

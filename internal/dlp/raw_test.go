package dlp

import (
	"context"
	"strings"
	"testing"
)

func TestScanRaw(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{})
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	tests := []struct {
		name       string
		raw        string
		ty         Type
		part       PartKind
		wantReason Reason
	}{
		{"an encoded-word subject is decoded", "Subject: =?utf-8?q?SSN_205-89-4542?=\n\nhello\n", SSN, PartSubject, ""},
		{"a quoted-printable body is decoded", "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nSSN 205=2D89=\n-4542\n", SSN, PartText, ""},
		{"a base64 HTML body is decoded", "Content-Type: text/html\nContent-Transfer-Encoding: base64\n\nPHA+U1NOIDIwNS04OS00NTQyPC9wPg==\n", SSN, PartHTML, ""},
		{"a base64 attachment in a multipart message is scanned", `Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

see attached
--b
Content-Type: text/csv; name="a.csv"
Content-Disposition: attachment; filename="a.csv"
Content-Transfer-Encoding: base64

c3NuLDIwNS04OS00NTQy
--b--
`, SSN, PartAttachment, ""},
		{"a forwarded message is opened", `Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: message/rfc822

Subject: fwd
Content-Type: text/plain
Content-Transfer-Encoding: base64

U1NOIDIwNS04OS00NTQy
--b--
`, SSN, PartText, ""},
		{"a PDF part fails closed", `Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

hi
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename="x.pdf"

%PDF-1.7
--b--
`, "", "", ReasonUnreadableType},
		{"a multipart without boundary fails closed", "Content-Type: multipart/mixed\n\nx\n", "", "", ReasonMessageMalformed},
		{"a message without header end fails closed", "Subject", "", "", ReasonMessageMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := s.ScanRaw(context.Background(), strings.NewReader(crlf(tt.raw)))
			if tt.wantReason != "" {
				if !res.Unscannable || res.Reason != tt.wantReason || !res.ContainsPHI {
					t.Fatalf("got unscannable=%v reason=%q, want %q", res.Unscannable, res.Reason, tt.wantReason)
				}
				return
			}
			if res.Unscannable {
				t.Fatalf("unscannable: %+v", res.Problems)
			}
			for _, f := range res.Findings {
				if f.Type == tt.ty && f.Confidence >= Likely && f.Part == tt.part {
					return
				}
			}
			t.Fatalf("no %s in %s: %+v", tt.ty, tt.part, res.Findings)
		})
	}
}

func TestScanRawRefusesDeepNesting(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{})
	var b strings.Builder
	for i := 0; i < 12; i++ {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Subject: x\r\n\r\nhi\r\n")
	res := s.ScanRaw(context.Background(), strings.NewReader(b.String()))
	if !res.Unscannable || res.Reason != ReasonTooManyParts || !res.ContainsPHI {
		t.Fatalf("got %+v", res)
	}
}

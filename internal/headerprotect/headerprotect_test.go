package headerprotect_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/headerprotect"
)

const sample = "Received: from relay by mx; Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; d=clinic.example; s=s1;\r\n\tb=abc\r\n" +
	"From: Clinic <noreply@clinic.example>\r\n" +
	"To: Rita <rita@patients.example>\r\n" +
	"Cc: nurse@clinic.example\r\n" +
	"Bcc: audit@clinic.example\r\n" +
	"Subject: Your HIV test result\r\n" +
	"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n" +
	"Message-ID: <m1@clinic.example>\r\n" +
	"In-Reply-To: <q1@patients.example>\r\n" +
	"List-Unsubscribe: <https://clinic.example/u/1>\r\n" +
	"X-Patient-MRN: 12345678\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\nContent-Type: text/plain\r\n\r\nNegative.\r\n--b1--\r\n"

func TestProtectSplitsHeaders(t *testing.T) {
	t.Parallel()
	p, err := headerprotect.Protect([]byte(sample), "")
	if err != nil {
		t.Fatal(err)
	}
	var outer bytes.Buffer
	p.WriteOuter(&outer, "Content-Type: application/octet-stream")
	o := outer.String()
	inner := string(p.Inner)

	tests := []struct {
		rule  string
		where string
		text  string
		want  bool
	}{
		{"routing fields stay readable outside", o, "From: Clinic <noreply@clinic.example>\r\n", true},
		{"To stays outside", o, "To: Rita <rita@patients.example>\r\n", true},
		{"Cc stays outside", o, "Cc: nurse@clinic.example\r\n", true},
		{"Date stays outside", o, "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n", true},
		{"Message-ID stays outside", o, "Message-ID: <m1@clinic.example>\r\n", true},
		{"threading stays outside", o, "In-Reply-To: <q1@patients.example>\r\n", true},
		{"one-click unsubscribe stays outside (RFC 8058)", o, "List-Unsubscribe: <https://clinic.example/u/1>\r\n", true},
		{"the outer subject is neutral", o, "Subject: Encrypted message\r\n", true},
		{"the real subject is not outside", o, "HIV", false},
		{"custom fields are not outside", o, "X-Patient-MRN", false},
		{"the old content type is not outside", o, "multipart/alternative", false},
		{"the caller's content type ends the outer header", o, "Content-Type: application/octet-stream\r\n\r\n", true},
		{"the real subject is inside", inner, "Subject: Your HIV test result\r\n", true},
		{"custom fields are inside", inner, "X-Patient-MRN: 12345678\r\n", true},
		{"Bcc is nowhere (RFC 5322 §3.6.3)", o + inner, "audit@clinic.example", false},
		{"trace fields are dropped", o + inner, "Received:", false},
		{"an old DKIM signature is dropped", o + inner, "DKIM-Signature", false},
		{"the inner content type is marked hp=cipher (RFC 9788)", inner, `Content-Type: multipart/alternative; boundary=b1; hp=cipher` + "\r\n\r\n", true},
		{"HP-Outer records the outer subject", inner, "HP-Outer: Subject: Encrypted message\r\n", true},
		{"HP-Outer records the outer From", inner, "HP-Outer: From: Clinic <noreply@clinic.example>\r\n", true},
		{"the body is kept byte for byte", inner, "\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nNegative.\r\n--b1--\r\n", true},
	}
	for _, tt := range tests {
		if got := strings.Contains(tt.where, tt.text); got != tt.want {
			t.Errorf("%s: contains %q = %v", tt.rule, tt.text, got)
		}
	}
	if strings.Count(inner, "Content-Type: multipart") != 1 {
		t.Error("the inner entity must have exactly one top-level Content-Type")
	}
}

func TestProtectRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		msg     string
		subject string
		want    error
		inner   string
	}{
		{"bare LF line ends become CRLF", "From: a@b.example\nSubject: s\n\nhello\n", "", nil, "\r\n\r\nhello\r\n"},
		{"a message without Content-Type gets the RFC 2045 default, marked", "From: a@b.example\r\n\r\nhi\r\n", "", nil, "Content-Type: text/plain; charset=us-ascii; hp=cipher\r\n"},
		{"a custom outer subject is used", "From: a@b.example\r\n\r\nhi\r\n", "Secure message from your clinic", nil, "HP-Outer: Subject: Secure message from your clinic\r\n"},
		{"an unparsable Content-Type is kept unmarked", "From: a@b.example\r\nContent-Type: text/plain; =\r\n\r\nhi\r\n", "", nil, "Content-Type: text/plain; =\r\n"},
		{"a message without From is refused", "To: a@b.example\r\n\r\nhi\r\n", "", headerprotect.ErrMalformed, ""},
		{"a header line that is not a field is refused", "From: a@b.example\r\nnot a field\r\n\r\nhi\r\n", "", headerprotect.ErrMalformed, ""},
		{"a continuation before any field is refused", " folded\r\nFrom: a@b.example\r\n\r\n", "", headerprotect.ErrMalformed, ""},
		{"a non-ASCII outer subject is refused", "From: a@b.example\r\n\r\nhi\r\n", "Résultat", headerprotect.ErrMalformed, ""},
		{"a CRLF in the outer subject is refused (header injection)", "From: a@b.example\r\n\r\nhi\r\n", "x\r\nBcc: evil@example.com", headerprotect.ErrMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := headerprotect.Protect([]byte(tt.msg), tt.subject)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if err == nil && !bytes.Contains(p.Inner, []byte(tt.inner)) {
				t.Fatalf("inner entity lacks %q:\n%s", tt.inner, p.Inner)
			}
		})
	}
}

func TestParseKeepsFolding(t *testing.T) {
	t.Parallel()
	m, err := headerprotect.Parse([]byte("Subject: a\r\n  b\r\nFrom: x@y.example\r\n\r\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Header[0].Raw); got != "Subject: a\r\n  b\r\n" {
		t.Fatalf("raw field = %q", got)
	}
	if got := m.Get("subject"); got != "a  b" {
		t.Fatalf("unfolded value = %q, want %q", got, "a  b")
	}
	if string(m.Body) != "body" {
		t.Fatalf("body = %q", m.Body)
	}
}

// FuzzProtect: any input either fails with ErrMalformed or yields an
// outer header of whole CRLF-terminated fields that never shows the
// original subject, and an inner entity that holds the original body.
func FuzzProtect(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("From: a@b.example\nSubject: s\n\nhello\n"))
	f.Add([]byte("From: a@b.example\r\nContent-Type: text/plain; =\r\n\r\n"))
	f.Add([]byte(" x\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := headerprotect.Protect(msg, "")
		if err != nil {
			if !errors.Is(err, headerprotect.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, f := range p.Outer {
			if !bytes.HasSuffix(f.Raw, []byte("\r\n")) {
				t.Fatalf("outer field %q does not end in CRLF", f.Raw)
			}
			if strings.EqualFold(f.Name, "subject") && f.Value() != headerprotect.DefaultSubject {
				t.Fatalf("outer subject %q is not the neutral one", f.Value())
			}
			if strings.EqualFold(f.Name, "bcc") {
				t.Fatal("Bcc on the outer header")
			}
		}
		m, err := headerprotect.Parse(msg)
		if err != nil {
			t.Fatalf("Protect accepted what Parse refuses: %v", err)
		}
		if !bytes.HasSuffix(p.Inner, m.Body) {
			t.Fatal("inner entity does not end with the original body")
		}
	})
}

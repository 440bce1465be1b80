package mail_test

import (
	"bytes"
	"errors"
	"io"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/sealpost/sealpost/internal/mail"
)

func TestParseAddress(t *testing.T) {
	good := []struct {
		in, addr, name string
		utf8           bool
	}{
		{"pat@clinic.example", "pat@clinic.example", "", false},
		{"Pat Doe <pat@Clinic.Example>", "pat@clinic.example", "Pat Doe", false},
		{`"Doe, Pat" <pat@clinic.example>`, "pat@clinic.example", "Doe, Pat", false},
		{"pat@bücher.example", "pat@xn--bcher-kva.example", "", false},
		{"José <josé@clinic.example>", "josé@clinic.example", "José", true},
	}
	for _, c := range good {
		a, err := mail.ParseAddress("to", c.in)
		if err != nil || a.Addr() != c.addr || a.Name != c.name || a.UTF8 != c.utf8 {
			t.Errorf("%q: %+v %v", c.in, a, err)
			continue
		}
		if !c.utf8 {
			back, err := netmail.ParseAddress(a.String())
			if err != nil || back.Address != c.addr || back.Name != c.name {
				t.Errorf("%q does not round-trip: %q -> %+v %v", c.in, a.String(), back, err)
			}
		}
	}
	bad := []string{
		"", "pat", "pat@", "@clinic.example", "pat@localhost", "pat@[192.0.2.1]",
		"pat@clinic.example\r\nBcc: x@y.example", "pat\x00@clinic.example", "a@b.example, c@d.example",
		strings.Repeat("a", 65) + "@clinic.example", "pat@" + strings.Repeat("a", 64) + ".example", "pat@-bad.example",
	}
	for _, in := range bad {
		_, err := mail.ParseAddress("to[0]", in)
		var fe *mail.FieldError
		if !errors.As(err, &fe) || fe.Field != "to[0]" || !errors.Is(err, mail.ErrInvalid) {
			t.Errorf("%q: %v, want a FieldError for to[0]", in, err)
		}
		if err != nil && in != "" && strings.Contains(err.Error(), in) {
			t.Errorf("%q: the error echoes the input", in)
		}
	}
}

func TestValidateHeader(t *testing.T) {
	cases := []struct {
		h  mail.Header
		ok bool
	}{
		{mail.Header{Name: "X-Campaign", Value: "flu-2026"}, true},
		{mail.Header{Name: "X-Note", Value: "Grüße\tand tabs"}, true},
		{mail.Header{Name: "Bcc", Value: "x@y.example"}, false},
		{mail.Header{Name: "dkim-signature", Value: "x"}, false},
		{mail.Header{Name: "ARC-Seal", Value: "x"}, false},
		{mail.Header{Name: "X-Bad", Value: "a\r\nBcc: x@y.example"}, false},
		{mail.Header{Name: "X-Bad", Value: "a\x00"}, false},
		{mail.Header{Name: "X:Bad", Value: "a"}, false},
		{mail.Header{Name: "X Bad", Value: "a"}, false},
		{mail.Header{Name: "X-Long", Value: strings.Repeat("a", 999)}, false},
	}
	for _, c := range cases {
		if err := mail.ValidateHeader("headers.x", c.h); (err == nil) != c.ok {
			t.Errorf("%+v: %v, want ok=%v", c.h, err, c.ok)
		}
	}
}

func from(t *testing.T) mail.Address {
	a, err := mail.ParseAddress("from", "Clinic Reminders <reminders@clinic.example>")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// parts walks a composed message and returns its leaf parts' media types
// and decoded bodies.
func parts(t *testing.T, raw []byte) (*gomail.Reader, map[string]string) {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		ct := p.Header.Get("Content-Type")
		mt, _, _ := strings.Cut(ct, ";")
		if ah, ok := p.Header.(*gomail.AttachmentHeader); ok {
			name, _ := ah.Filename()
			mt += ":" + name
		}
		out[mt] = string(b)
	}
	return r, out
}

func TestBuild(t *testing.T) {
	to, _ := mail.ParseAddress("to", "José Núñez <jose@patient.example>")
	d := mail.Draft{From: from(t), To: []mail.Address{to}, Subject: "Résultats prêts — lab #42",
		HTML:    `<p>Hello <b>José</b>,</p><p>See <a href="https://portal.clinic.example/r/1">your results</a>.</p><img src="cid:logo">`,
		Headers: []mail.Header{{Name: "X-Campaign", Value: "labs"}},
		Attachments: []mail.Attachment{
			{Filename: "résumé.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7 fake")},
			{Filename: "logo.png", ContentType: "image/png", Content: []byte{0x89, 'P', 'N', 'G'}, ContentID: "logo"},
		},
		Date: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	raw, id, err := mail.Build(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id, "@clinic.example") {
		t.Errorf("Message-ID %q", id)
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 || bytes.IndexByte(line, '\n') >= 0 {
			t.Fatalf("line %d is over 998 octets or has a bare LF", i)
		}
	}
	r, got := parts(t, raw)
	subject, _ := r.Header.Subject()
	if subject != d.Subject {
		t.Errorf("subject %q", subject)
	}
	if tos, _ := r.Header.AddressList("To"); len(tos) != 1 || tos[0].Name != "José Núñez" {
		t.Errorf("To: %v", tos)
	}
	if r.Header.Get("X-Campaign") != "labs" || r.Header.Get("Bcc") != "" {
		t.Error("custom header missing or Bcc present")
	}
	if !strings.Contains(got["text/plain"], "your results (https://portal.clinic.example/r/1)") {
		t.Errorf("generated text: %q", got["text/plain"])
	}
	if !strings.Contains(got["text/html"], "<b>José</b>") || got["application/pdf:résumé.pdf"] != "%PDF-1.7 fake" {
		t.Errorf("parts: %v", got)
	}
	if !strings.Contains(string(raw), "multipart/related") || !strings.Contains(string(raw), "Content-Id: <logo>") &&
		!strings.Contains(string(raw), "Content-ID: <logo>") {
		t.Error("the inline image is not in a related part with its Content-ID")
	}

	textOnly := mail.Draft{From: from(t), To: []mail.Address{to}, Text: "Your appointment is tomorrow at 9:00."}
	raw, _, err = mail.Build(textOnly)
	if err != nil || !strings.Contains(string(raw), "Content-Type: text/plain") || strings.Contains(string(raw), "multipart") {
		t.Fatalf("text only: %v\n%s", err, raw)
	}

	bad := []mail.Draft{
		{From: from(t), Subject: "a\r\nBcc: x@y.example", Text: "x"},
		{From: from(t)},
		{From: from(t), Text: "x", Headers: []mail.Header{{Name: "Subject", Value: "x"}}},
		{From: from(t), Text: "x", Attachments: []mail.Attachment{{Filename: "../etc/passwd", Content: []byte("x")}}},
		{From: from(t), Text: "x", Attachments: []mail.Attachment{{Filename: "a.pdf", ContentType: "not a type", Content: []byte("x")}}},
	}
	for i, d := range bad {
		if _, _, err := mail.Build(d); !errors.Is(err, mail.ErrInvalid) {
			t.Errorf("bad draft %d: %v", i, err)
		}
	}
}

func TestHTMLToText(t *testing.T) {
	cases := []struct{ in, want string }{
		{`<p>One</p><p>Two &amp; three</p>`, "One\nTwo & three"},
		{`<ul><li>a</li><li>b</li></ul>`, "- a\n- b"},
		{`<a href="https://x.example/">https://x.example/</a>`, "https://x.example/"},
		{`<a href="https://x.example/r">Results</a> ready`, "Results (https://x.example/r) ready"},
		{`<head><title>t</title><style>p{}</style></head><script>alert(1)</script>Hi<br>there`, "Hi\nthere"},
	}
	for _, c := range cases {
		if got := mail.HTMLToText(c.in); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

package portal

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

const rawMultipart = "From: Dr Lee <results@clinic.example>\r\n" +
	"To: pat@patient.example\r\n" +
	"Subject: =?utf-8?q?Your_r=C3=A9sultats?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=outer\r\n" +
	"\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=inner\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"SSN 078-05-1120 =E2=80=94 A1c 6.1%\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"\r\n" +
	"<p>SSN 078-05-1120</p>\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: application/pdf\r\n" +
	"Content-Disposition: attachment; filename=\"../../labs.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"JVBERi0xLjc=\r\n" +
	"--outer--\r\n"

func TestParseRawTakesBodiesAndAttachments(t *testing.T) {
	t.Parallel()
	c, err := ParseRaw([]byte(rawMultipart))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "Your résultats" {
		t.Errorf("subject %q", c.Subject)
	}
	if !strings.Contains(c.Text, "078-05-1120 — A1c") || !strings.Contains(c.HTML, "<p>SSN") {
		t.Errorf("bodies %q / %q", c.Text, c.HTML)
	}
	if len(c.Attachments) != 1 || string(c.Attachments[0].Content) != "%PDF-1.7" || c.Attachments[0].ContentType != "application/pdf" {
		t.Fatalf("attachments %+v", c.Attachments)
	}
	if c.Attachments[0].Filename != "attachment-1" {
		t.Errorf("a file name with a path was kept: %q", c.Attachments[0].Filename)
	}
}

func TestParseRawRefusesWhatIsNotMail(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"binary":           "\x00\x01\x02",
		"broken multipart": "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--b--\r\n",
	} {
		if _, err := ParseRaw([]byte(raw)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRawDepositIsParsedAndSealed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		_, token := w.deposit(Deposit{Raw: []byte(rawMultipart)})
		sess, err := w.svc.Verify(context.Background(), token, w.code(token), "", Client{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.svc.Read(context.Background(), sess, Client{})
		if err != nil || c.Subject != "Your résultats" || len(c.Attachments) != 1 {
			t.Errorf("read back: %+v %v", c, err)
		}
	})
}

func FuzzParseRaw(f *testing.F) {
	f.Add([]byte(rawMultipart))
	f.Add([]byte("Subject: hi\r\n\r\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseRaw(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("an error that is not a refusal: %v", err)
			}
			return
		}
		for _, a := range c.Attachments {
			if _, ok := cleanFilename(a.Filename); !ok {
				t.Fatalf("an attachment name that is not clean: %q", a.Filename)
			}
		}
	})
}

func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		s     Settings
		field string
	}{
		{"defaults", Settings{}, ""},
		{"full", Settings{DisplayName: "Riverside Clinic", LogoURL: "data:image/png;base64,iVBORw0KGgo=", PrimaryColor: "#1A2B3C"}, ""},
		{"logo from a third party", Settings{LogoURL: "https://cdn.example/logo.png"}, "logo_url"},
		{"SVG logo (may carry script)", Settings{LogoURL: "data:image/svg+xml;base64,PHN2Zz4="}, "logo_url"},
		{"colour that is CSS", Settings{PrimaryColor: "red; background: url(x)"}, "primary_color"},
		{"name with a newline", Settings{DisplayName: "A\nB"}, "display_name"},
	}
	for _, c := range cases {
		err := c.s.Validate()
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%s: %v, want a refusal of %s", c.name, err, c.field)
		}
	}
}

func TestBrandingReachesThePages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		if err := w.svc.SetSettings(context.Background(), w.acct, Actor{Kind: "user", ID: "u"}, Settings{DisplayName: "Riverside Health",
			LogoURL: "data:image/png;base64,iVBORw0KGgo=", PrimaryColor: "#AA3300"}); err != nil {
			t.Fatal(err)
		}
		c := w.serve()
		_, token := w.deposit(Deposit{})
		p := get(t, c, w.srv.URL+"/p/"+token)
		if !contains(p.body, "Riverside Health", `src="data:image/png;base64,iVBORw0KGgo="`, "--accent: #aa3300") {
			t.Errorf("branded page: %s", p.body)
		}
		if !strings.Contains(w.out.last(t, PurposeLink).Subject, "Riverside Health") {
			t.Error("the notice does not name the display name")
		}
	})
}

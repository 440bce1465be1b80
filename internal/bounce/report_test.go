package bounce

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// want is the part of a per-recipient group a sample must yield.
type want struct {
	final, original, action, status, diagPrefix string
}

func TestParseSamples(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file string
		kind       string
		mta        string
		rcpts      []want
	}{
		{"Postfix: a rejected mailbox with a folded diagnostic", "postfix-hard.eml", KindDelivery, "mx.patient.example",
			[]want{{"pat@patient.example", "pat@patient.example", "failed", "5.1.1",
				"550 5.1.1 <pat@patient.example>: Recipient address rejected: User unknown in local recipient table"}}},
		{"Exchange: a base64 delivery-status after a multipart/alternative", "exchange-hard.eml", KindDelivery,
			"BN8PR12MB3300.namprd12.prod.outlook.com",
			[]want{{"pat@patient.example", "", "failed", "5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound"}}},
		{"Gmail: an unspecific 5.0.0 takes the diagnostic's 5.1.1", "gmail-hard.eml", KindDelivery, "googlemail.com",
			[]want{{"pat@patient.example", "", "failed", "5.1.1", "550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1"}}},
		{"several recipients: failed, delayed and delivered groups", "multi-recipient.eml", KindDelivery, "mx.patient.example",
			[]want{
				{"PAT@Patient.Example", "", "failed", "5.2.2", "552 5.2.2 Mailbox full"},
				{"kim.lee@store.patient.example", "kim@patient.example", "delayed", "4.4.1", ""},
				{"lee@patient.example", "", "delivered", "2.0.0", ""},
			}},
		{"LF line ends, folding everywhere, no per-message group", "folded-lf.eml", KindDelivery, "",
			[]want{{"pat@patient.example", "", "failed", "5.1.1", "550 5.1.1 unknown user in virtual mailbox table"}}},
		{"missing Action and Final-Recipient, a malformed Status", "missing-fields.eml", KindDelivery, "old.patient.example",
			[]want{
				{"", "pat@patient.example", "", "5.2.1", "mailbox disabled"},
				{"nobody-we-sent-to@elsewhere.example", "", "failed", "", ""},
			}},
		{"an ARF abuse report", "arf-abuse.eml", KindFeedback, "", nil},
		{"an autoreply is not a report", "autoreply.eml", "", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(readSample(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != c.kind || r.ReportingMTA != c.mta {
				t.Fatalf("kind %q, reporting MTA %q; want %q, %q", r.Kind, r.ReportingMTA, c.kind, c.mta)
			}
			if len(r.Recipients) != len(c.rcpts) {
				t.Fatalf("%d recipient groups, want %d: %+v", len(r.Recipients), len(c.rcpts), r.Recipients)
			}
			for i, w := range c.rcpts {
				g := r.Recipients[i]
				got := want{g.FinalRecipient, g.OriginalRecipient, g.Action, g.Status, ""}
				if !strings.HasPrefix(g.Diagnostic, w.diagPrefix) {
					t.Errorf("group %d diagnostic %q, want it to start %q", i, g.Diagnostic, w.diagPrefix)
				}
				w.diagPrefix = ""
				if got != w {
					t.Errorf("group %d: %+v, want %+v", i, got, w)
				}
			}
		})
	}
}

func TestParseFeedbackReports(t *testing.T) {
	t.Parallel()
	r, err := Parse(readSample(t, "arf-abuse.eml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Feedback{Type: "abuse", UserAgent: "SomeGenerator/1.0", OriginalMailFrom: "b+TOKEN@bounces.clinic.example",
		OriginalRcptTo: []string{"pat@patient.example"}, ArrivalDate: "Thu, 3 Dec 2026 09:00:00 +0000", ReportingMTA: "fbl.patient.example"}
	if !reflect.DeepEqual(r.Feedback, want) {
		t.Errorf("feedback %+v, want %+v", r.Feedback, want)
	}
	if !reflect.DeepEqual(r.ReturnedRcpts, []string{"pat@patient.example", "kim@patient.example"}) {
		t.Errorf("returned recipients %v", r.ReturnedRcpts)
	}
	r, err = Parse(readSample(t, "arf-redacted.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindFeedback || r.Feedback.Type != "abuse" || len(r.Feedback.OriginalRcptTo) != 0 ||
		!reflect.DeepEqual(r.ReturnedRcpts, []string{"redacted@patient.example", "kim@patient.example"}) {
		t.Errorf("a redacted report: %+v", r)
	}
}

func TestFieldRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, got, want string
	}{
		{"an address type is stripped", address("rfc822; pat@patient.example"), "pat@patient.example"},
		{"angle brackets are stripped", address("rfc822;<pat@patient.example>"), "pat@patient.example"},
		{"a trailing comment is stripped", address("rfc822; pat@patient.example (Pat)"), "pat@patient.example"},
		{"an untyped address is kept", address("pat@patient.example"), "pat@patient.example"},
		{"a status comment is dropped", statusCode("5.1.1 (bad mailbox)"), "5.1.1"},
		{"a status of class 3 is malformed", statusCode("3.1.1"), ""},
		{"a status with a long subject is malformed", statusCode("5.1234.1"), ""},
		{"the enhanced code follows the reply code", enhancedIn("550-5.7.1 [192.0.2.1] blocked"), "5.7.1"},
		{"no enhanced code in prose", enhancedIn("mailbox unavailable"), ""},
		{"an action is lower-cased", action("FAILED"), "failed"},
		{"an unknown action is empty", action("bounced"), ""},
		{"xtext is decoded", xtextDecode("pat+2Bclinic@patient.example"), "pat+clinic@patient.example"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	for text, code := range map[string]int{"550 5.1.1 no": 550, "452-4.2.2 full": 452, "5501": 0, "abc": 0, "": 0, "250": 250} {
		if got := replyCode(text); got != code {
			t.Errorf("replyCode(%q) = %d, want %d", text, got, code)
		}
	}
}

func TestHardBounceStatuses(t *testing.T) {
	t.Parallel()
	for status, hard := range map[string]bool{"5.1.1": true, "5.1.10": true, "5.2.1": true, "5.1.2": true, "5.1.6": true,
		"5.2.2": false, "5.7.1": false, "5.1.7": false, "5.0.0": false, "4.1.1": false, "": false} {
		if IsHard(status) != hard {
			t.Errorf("IsHard(%q) = %v, want %v", status, !hard, hard)
		}
	}
}

// FuzzParse: no input makes the parser panic, and what it returns is
// well formed.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") {
			f.Add(readSample(f, e.Name()))
		}
	}
	f.Add([]byte("Content-Type: message/delivery-status\r\n\r\nAction: failed\r\n \r\n\tStatus: 5.1.1"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Parse(raw)
		if err != nil {
			return
		}
		for _, g := range r.Recipients {
			if g.Status != "" && !isStatus(g.Status) {
				t.Fatalf("status %q is not RFC 3463 syntax", g.Status)
			}
			if g.Action != "" && action(g.Action) != g.Action {
				t.Fatalf("action %q", g.Action)
			}
		}
	})
}

func TestAFieldFoldedOverManyLinesIsCut(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; pat@patient.example\r\nAction: failed\r\nDiagnostic-Code: smtp; 550")
	for range 200000 {
		b.WriteString("\r\n x")
	}
	b.WriteString("\r\nStatus: 5.1.1\r\n")
	r, err := Parse([]byte(b.String()))
	if err != nil || len(r.Recipients) != 1 {
		t.Fatalf("%+v, %v", r.Recipients, err)
	}
	if g := r.Recipients[0]; len(g.Diagnostic) > maxFieldValue || g.Status != "5.1.1" || !strings.HasPrefix(g.Diagnostic, "550 x x") {
		t.Errorf("diagnostic of %d bytes, status %q", len(g.Diagnostic), g.Status)
	}
}

package dlp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func newTestScanner(t testing.TB, o Options) *Scanner {
	t.Helper()
	if o.Now == nil {
		o.Now = fixedNow
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// likely reports whether res has a finding of type ty at Likely
// confidence or more.
func likely(res Result, ty Type) bool {
	for _, f := range res.Findings {
		if f.Type == ty && f.Confidence >= Likely {
			return true
		}
	}
	return false
}

func TestDetectorRules(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{})
	tests := []struct {
		name string
		msg  Message
		ty   Type
		want bool
	}{
		{"SSN with dashes is an SSN", Message{Text: "SSN 205-89-4542"}, SSN, true},
		{"SSN with spaces is an SSN", Message{Text: "SSN 205 89 4542"}, SSN, true},
		{"SSN with dots is an SSN", Message{Text: "SSN 205.89.4542"}, SSN, true},
		{"SSN with spaced dashes is an SSN", Message{Text: "SSN 205 - 89 - 4542"}, SSN, true},
		{"unformatted nine digits next to SSN is an SSN", Message{Text: "SSN: 205894542"}, SSN, true},
		{"unformatted nine digits alone are not an SSN", Message{Text: "ref 205894542"}, SSN, false},
		{"SSN with area 000 is not an SSN", Message{Text: "SSN 000-89-4542"}, SSN, false},
		{"SSN with area 666 is not an SSN", Message{Text: "SSN 666-89-4542"}, SSN, false},
		{"SSN with area 9xx is not an SSN", Message{Text: "SSN 912-89-4542"}, SSN, false},
		{"SSN with group 00 is not an SSN", Message{Text: "SSN 205-00-4542"}, SSN, false},
		{"SSN with serial 0000 is not an SSN", Message{Text: "SSN 205-89-0000"}, SSN, false},
		{"the Woolworth SSN is low confidence", Message{Text: "SSN 078-05-1120"}, SSN, false},
		{"123-45-6789 is low confidence", Message{Text: "SSN 123-45-6789"}, SSN, false},
		{"an SSN inside a longer number is not an SSN", Message{Text: "SSN 205-89-4542-11"}, SSN, false},
		{"an SSN glued to letters is not an SSN", Message{Text: "A205894542"}, SSN, false},
		{"an order number shaped like an SSN is not an SSN", Message{Text: "Order 205-89-4542"}, SSN, false},
		{"zero-width characters do not hide an SSN", Message{Text: "SSN 2\u200b05-8\u200c9-45\u200d42\ufeff"}, SSN, true},
		{"soft hyphens do not hide an SSN", Message{Text: "SSN 205\u00ad89\u00ad4542"}, SSN, true},
		{"full-width digits do not hide an SSN", Message{Text: "SSN ２０５－８９－４５４２"}, SSN, true},
		{"Devanagari digits do not hide an SSN", Message{Text: "SSN २०५-८९-४५४२"}, SSN, true},
		{"combining marks do not hide an SSN", Message{Text: "SSN 2\u03320\u03325-89-4542"}, SSN, true},
		{"HTML entities do not hide an SSN", Message{HTML: "<p>SSN &#50;&#48;&#x35;&#45;89&ndash;4542</p>"}, SSN, true},
		{"HTML tags do not hide an SSN", Message{HTML: "<p>SSN <b>205</b>-<i>89</i>-<span>4542</span></p>"}, SSN, true},
		{"an SSN in an HTML comment is found", Message{HTML: "<p>hi</p><!-- SSN 205-89-4542 -->"}, SSN, true},
		{"an SSN in an alt attribute is found", Message{HTML: `<img alt="SSN 205-89-4542">`}, SSN, true},
		{"table cells do not join into an SSN", Message{HTML: "<table><tr><td>205</td><td>89</td><td>4542</td></tr></table>"}, SSN, false},
		{"an SSN in the subject is found", Message{Subject: "SSN 205-89-4542"}, SSN, true},

		{"CMS example MBI is an MBI", Message{Text: "MBI 1EG4-TE5-MK73"}, MBI, true},
		{"MBI with S in a letter position is not an MBI", Message{Text: "MBI 1SG4TE5MK73"}, MBI, false},
		{"MBI starting with 0 is not an MBI", Message{Text: "MBI 0EG4TE5MK73"}, MBI, false},

		{"NPI with a valid 80840 Luhn check is an NPI", Message{Text: "NPI 1234567893"}, NPI, true},
		{"NPI with a wrong check digit is not an NPI", Message{Text: "NPI 1234567890"}, NPI, false},
		{"NPI starting with 3 is not an NPI", Message{Text: "NPI 3234567893"}, NPI, false},

		{"DEA with a valid check digit is a DEA number", Message{Text: "DEA AB1234563"}, DEA, true},
		{"DEA with a wrong check digit is not a DEA number", Message{Text: "DEA AB1234567"}, DEA, false},
		{"DEA with an unknown registrant letter is not a DEA number", Message{Text: "DEA ZB1234563"}, DEA, false},

		{"listed ICD-10-CM code is a diagnosis", Message{Text: "code E11.9"}, ICD10, true},
		{"unlisted well-formed code needs a diagnosis word", Message{Text: "code E16.8"}, ICD10, false},
		{"unlisted well-formed code next to dx is a diagnosis", Message{Text: "dx E16.8"}, ICD10, true},
		{"undotted code next to a diagnosis word is a diagnosis", Message{Text: "diagnosis E119"}, ICD10, true},
		{"undotted code alone is not a diagnosis", Message{Text: "model E119"}, ICD10, false},
		{"a product code shaped like ICD next to model is not a diagnosis", Message{Text: "Model K21.9"}, ICD10, false},

		{"five digits after CPT are a procedure code", Message{Text: "CPT 99213"}, CPT, true},
		{"five digits without context are not a procedure code", Message{Text: "see 99213"}, CPT, false},

		{"a date after DOB is a date of birth", Message{Text: "DOB: 03/14/1962"}, DOB, true},
		{"a date without context is not a date of birth", Message{Text: "Seen on 03/14/1962"}, DOB, false},
		{"an impossible date is not a date of birth", Message{Text: "DOB 02/30/1962"}, DOB, false},
		{"a future date is not a date of birth", Message{Text: "DOB 03/14/2031"}, DOB, false},
		{"a spelled-out date after born is a date of birth", Message{Text: "born on March 3, 1981"}, DOB, true},

		{"Luhn-valid Visa number is a card", Message{Text: "card 4539 1488 0343 6467"}, PaymentCard, true},
		{"Luhn-invalid number is not a card", Message{Text: "card 4539 1488 0343 6468"}, PaymentCard, false},
		{"unknown issuer range is not a card", Message{Text: "9539148803436467"}, PaymentCard, false},
		{"a published test card is low confidence", Message{Text: "card 4111 1111 1111 1111"}, PaymentCard, false},

		{"valid routing number next to routing is an ABA number", Message{Text: "routing 021000021"}, ABARouting, true},
		{"valid routing number alone is not reported", Message{Text: "see 021000021"}, ABARouting, false},
		{"routing number with a bad checksum is not an ABA number", Message{Text: "routing 021000022"}, ABARouting, false},

		{"formatted NANP number is a phone number", Message{Text: "(415) 867-5309"}, Phone, true},
		{"area code starting with 1 is not a phone number", Message{Text: "Phone 123-456-7890"}, Phone, false},
		{"N11 exchange is not a phone number", Message{Text: "Phone 415-411-7890"}, Phone, false},
		{"555-01XX is fictional", Message{Text: "Phone 415-555-0123"}, Phone, false},

		{"number, name and suffix are an address", Message{Text: "at 742 Evergreen Terrace"}, Address, true},
		{"a title after a number is not an address", Message{Text: "waited 3 days for Dr. Smith"}, Address, false},

		{"a dictionary drug is a clinical term", Message{Text: "taking Metformin daily"}, ClinicalTerm, true},
		{"a term inside a longer word is not a term", Message{Text: "metforminx"}, ClinicalTerm, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := s.Scan(context.Background(), tt.msg)
			if got := likely(res, tt.ty); got != tt.want {
				t.Errorf("%s found = %v, want %v (findings %+v)", tt.ty, got, tt.want, res.Findings)
			}
		})
	}
}

func TestAttachmentsFailClosed(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{MaxPartBytes: 1 << 10})
	b64 := func(s string) []byte { return []byte(base64.StdEncoding.EncodeToString([]byte(s))) }
	tests := []struct {
		name       string
		att        Attachment
		wantSSN    bool
		wantReason Reason
	}{
		{"base64 attachment is scanned", Attachment{Filename: "a.txt", ContentType: "text/plain", TransferEncoding: "base64", Content: b64("SSN 205-89-4542")}, true, ""},
		{"base64 with line breaks is scanned", Attachment{Filename: "a.txt", TransferEncoding: "base64", Content: []byte("U1NOIDIwNS04\r\nOS00NTQy")}, true, ""},
		{"quoted-printable attachment is scanned", Attachment{Filename: "a.csv", TransferEncoding: "quoted-printable", Content: []byte("SSN,205=2D89-4542=\r\n")}, true, ""},
		{"CSV attachment is scanned", Attachment{Filename: "list.csv", ContentType: "text/csv", Content: []byte("name,ssn\nA,205-89-4542\n")}, true, ""},
		{"JSON escapes do not hide an SSN", Attachment{Filename: "a.json", ContentType: "application/json", Content: []byte(`{"ssn":"\u0032\u00305-89-4542"}`)}, true, ""},
		{"XML entities do not hide an SSN", Attachment{Filename: "a.xml", ContentType: "application/xml", Content: []byte(`<p ssn="x"><v>SSN &#50;05-89-4542</v></p>`)}, true, ""},
		{"HTML attachment is read as HTML", Attachment{Filename: "a.html", ContentType: "text/html", Content: []byte(`<b>SSN</b> 2&#48;5-89-4542`)}, true, ""},
		{"Latin-1 attachment is decoded", Attachment{Filename: "a.txt", ContentType: "text/plain; charset=iso-8859-1", Content: []byte("SSN\xa0205-89-4542 caf\xe9")}, true, ""},
		{"UTF-16 attachment is decoded", Attachment{Filename: "a.txt", Content: []byte("\xff\xfeS\x00S\x00N\x00 \x002\x000\x005\x00-\x008\x009\x00-\x004\x005\x004\x002\x00")}, true, ""},
		{"octet-stream with a text name is sniffed and scanned", Attachment{Filename: "notes.txt", ContentType: "application/octet-stream", Content: []byte("SSN 205-89-4542")}, true, ""},
		{"unnamed untyped text is sniffed and scanned", Attachment{Content: []byte("SSN 205-89-4542")}, true, ""},
		{"unreadable attachment fails closed", Attachment{Filename: "scan.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7 ...")}, false, ReasonUnreadableType},
		{"image attachment fails closed", Attachment{Filename: "x.png", Content: []byte("\x89PNG\r\n\x1a\n....")}, false, ReasonUnreadableType},
		{"malformed base64 fails closed", Attachment{Filename: "a.txt", TransferEncoding: "base64", Content: []byte("!!not base64!!")}, false, ReasonBadEncoding},
		{"unknown transfer encoding fails closed", Attachment{Filename: "a.txt", TransferEncoding: "x-uuencode", Content: []byte("begin 644")}, false, ReasonBadEncoding},
		{"unknown charset fails closed", Attachment{Filename: "a.txt", ContentType: "text/plain; charset=x-klingon", Content: []byte("hello")}, false, ReasonUnknownCharset},
		{"binary bytes in a text part fail closed", Attachment{Filename: "a.txt", ContentType: "text/plain", Content: []byte("SSN\x00\x01\x02")}, false, ReasonBinaryContent},
		{"malformed JSON fails closed", Attachment{Filename: "a.json", ContentType: "application/json", Content: []byte(`{"ssn": "\u0032`)}, false, ReasonParseError},
		{"malformed XML fails closed", Attachment{Filename: "a.xml", ContentType: "text/xml", Content: []byte(`<a><b></a>`)}, false, ReasonParseError},
		{"oversize attachment fails closed", Attachment{Filename: "a.txt", ContentType: "text/plain", Content: []byte(strings.Repeat("x", 2<<10))}, false, ReasonOversize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := s.Scan(context.Background(), Message{Text: "hello", Attachments: []Attachment{tt.att}})
			if got := likely(res, SSN); got != tt.wantSSN {
				t.Errorf("SSN found = %v, want %v (%+v)", got, tt.wantSSN, res)
			}
			if tt.wantReason == "" {
				if res.Unscannable {
					t.Fatalf("unexpectedly unscannable: %+v", res.Problems)
				}
				for _, f := range res.Findings {
					if f.Type == SSN && (f.Part != PartAttachment || f.Index != 0) {
						t.Errorf("SSN located in %s %d, want attachment 0", f.Part, f.Index)
					}
				}
				return
			}
			if !res.Unscannable || res.Reason != tt.wantReason || !res.ContainsPHI || res.Score != 1 {
				t.Errorf("got unscannable=%v reason=%q phi=%v score=%v, want unscannable with %q, PHI, score 1",
					res.Unscannable, res.Reason, res.ContainsPHI, res.Score, tt.wantReason)
			}
			want := []Problem{{Part: PartAttachment, Index: 0, Reason: tt.wantReason}}
			if !reflect.DeepEqual(res.Problems, want) {
				t.Errorf("problems = %+v, want %+v", res.Problems, want)
			}
		})
	}
}

func TestScanFailsClosed(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{MaxPartBytes: 64})
	t.Run("oversize body fails closed", func(t *testing.T) {
		res := s.Scan(context.Background(), Message{Text: strings.Repeat("a", 65)})
		if !res.Unscannable || res.Reason != ReasonOversize || !res.ContainsPHI {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("expired deadline fails closed", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		res := s.Scan(ctx, Message{Text: "hello"})
		if !res.Unscannable || res.Reason != ReasonTimeout || !res.ContainsPHI {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("cancelled context fails closed", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := s.Scan(ctx, Message{Text: "hello"})
		if !res.Unscannable || res.Reason != ReasonCanceled || !res.ContainsPHI {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("a deadline reached inside a long part fails closed", func(t *testing.T) {
		// The context expires after a few checks: the detectors must
		// notice in their loops, not only between parts.
		ctx := &expiringContext{Context: context.Background(), left: 3}
		sc := &scan{s: s, ctx: ctx, res: Result{Counts: map[Type]int{}}}
		big := newTestScanner(t, Options{})
		sc.s = big
		sc.run(Message{Text: strings.Repeat("call 415 867 5309 ", 20000), HTML: "<p>SSN 205-89-4542</p>"})
		sc.finish()
		res := sc.res
		if !res.Unscannable || res.Reason != ReasonTimeout || !res.ContainsPHI {
			t.Errorf("got unscannable=%v reason=%q", res.Unscannable, res.Reason)
		}
		if ctx.calls > 50 {
			t.Errorf("context checked %d times after expiring: detectors do not stop", ctx.calls)
		}
		if res.Counts[SSN] != 0 {
			t.Errorf("the part after the timeout was scanned")
		}
	})
	t.Run("too many attachments fail closed", func(t *testing.T) {
		few := newTestScanner(t, Options{MaxAttachments: 1})
		a := Attachment{Filename: "a.txt", Content: []byte("hi")}
		res := few.Scan(context.Background(), Message{Text: "x", Attachments: []Attachment{a, a}})
		if !res.Unscannable || res.Reason != ReasonTooManyParts {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("malformed HTML is still read", func(t *testing.T) {
		res := s.Scan(context.Background(), Message{HTML: "<p <b>SSN 205-89-4542</i></div"})
		if res.Unscannable {
			t.Errorf("got %+v", res)
		}
	})
}

func TestVerdict(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{})
	tests := []struct {
		name string
		text string
		want bool
	}{
		{"an SSN is PHI", "SSN 205-89-4542", true},
		{"a diagnosis code is PHI", "Assessment: E11.9", true},
		{"a drug and a date of birth are PHI", "DOB 03/14/1962, on metformin", true},
		{"a clinic phone number alone is not PHI", "Call us at (415) 867-5309.", false},
		{"twenty phone numbers are not PHI", strings.Repeat("Call (415) 867-5309. ", 20), false},
		{"one clinical term alone is not PHI", "Learn about diabetes at our free class.", false},
		{"an order confirmation is not PHI", "Order 205-89-4542 ships tomorrow, tracking 1Z999AA10123456784.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := s.Scan(context.Background(), Message{Text: tt.text})
			if res.ContainsPHI != tt.want {
				t.Errorf("ContainsPHI = %v (score %.2f), want %v", res.ContainsPHI, res.Score, tt.want)
			}
		})
	}
}

func TestThresholdIsConfigurable(t *testing.T) {
	t.Parallel()
	strict := newTestScanner(t, Options{Threshold: 0.1})
	res := strict.Scan(context.Background(), Message{Text: "Call us at (415) 867-5309."})
	if !res.ContainsPHI {
		t.Errorf("score %.2f with threshold 0.1: want PHI", res.Score)
	}
}

// The result may be stored and logged: it must never carry what it found.
func TestFindingsNeverHoldMatchedText(t *testing.T) {
	t.Parallel()
	for i := 0; i < reflect.TypeOf(Finding{}).NumField(); i++ {
		f := reflect.TypeOf(Finding{}).Field(i)
		if f.Type.Kind() == reflect.String && f.Name != "Type" && f.Name != "Part" {
			t.Errorf("Finding.%s is a string: findings must not hold text", f.Name)
		}
	}
	s := newTestScanner(t, Options{})
	secrets := []string{"205-89-4542", "1EG4-TE5-MK73", "metformin", "03/14/1962", "4539148803436467"}
	res := s.Scan(context.Background(), Message{
		Subject: "SSN 205-89-4542",
		Text:    "MBI 1EG4-TE5-MK73, DOB 03/14/1962, card 4539148803436467, metformin",
		Attachments: []Attachment{
			{Filename: "205-89-4542.pdf", ContentType: "application/pdf", Content: []byte("%PDF")},
		},
	})
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range secrets {
		if strings.Contains(string(out), sec) {
			t.Errorf("result JSON contains %q: %s", sec, out)
		}
	}
	if res.Counts[SSN] < 1 || res.Counts[MBI] != 1 || res.Counts[DOB] != 1 {
		t.Errorf("counts = %v", res.Counts)
	}
}

func TestFindingLocations(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{})
	html := "<p>Name: <b>Ann</b></p><p>SSN&nbsp;205-89-4542</p>"
	res := s.Scan(context.Background(), Message{Subject: "hi", HTML: html})
	text, err := HTMLText(html)
	if err != nil {
		t.Fatal(err)
	}
	norm := Normalise(text)
	for _, f := range res.Findings {
		if f.Type != SSN {
			continue
		}
		if f.Part != PartHTML {
			t.Errorf("part = %s, want html", f.Part)
		}
		if got := norm[f.Offset : f.Offset+f.Length]; got != "205-89-4542" {
			t.Errorf("location points at %q", got)
		}
		return
	}
	t.Fatalf("no SSN in %+v", res.Findings)
}

func TestMaxFindingsTruncatesButCounts(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{MaxFindings: 3})
	res := s.Scan(context.Background(), Message{Text: strings.Repeat("metformin ", 10)})
	if len(res.Findings) != 3 || !res.Truncated || res.Counts[ClinicalTerm] != 10 {
		t.Errorf("findings %d truncated %v counts %v", len(res.Findings), res.Truncated, res.Counts)
	}
}

func TestAccountOptions(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{
		MRNPatterns: []MRNPattern{{Pattern: `HX-\d{6}`, Anywhere: true}, {Pattern: `\d{3}\.\d{3}\.\d{3}`}},
		Terms:       []string{"Zyloprimorex", "left-handed widgetitis"},
	})
	tests := []struct {
		name string
		text string
		ty   Type
		want bool
	}{
		{"an account pattern marked anywhere matches without context", "see HX-123456 today", MRN, true},
		{"an account pattern matches only whole tokens", "see XHX-123456 today", MRN, false},
		{"a context-only account pattern matches after MRN", "MRN: 123.456.789", MRN, true},
		{"a context-only account pattern does not match alone", "value 123.456.789", MRN, false},
		{"an account term is matched regardless of case", "taking ZYLOPRIMOREX", AccountTerm, true},
		{"a multi-word account term is matched across punctuation", "history of Left-Handed  Widgetitis.", AccountTerm, true},
		{"an account term is not a built-in one", "taking ZYLOPRIMOREX", ClinicalTerm, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := likely(s.Scan(context.Background(), Message{Text: tt.text}), tt.ty); got != tt.want {
				t.Errorf("%s found = %v, want %v", tt.ty, got, tt.want)
			}
		})
	}
	t.Run("no built-in terms leaves only the account's", func(t *testing.T) {
		t.Parallel()
		only := newTestScanner(t, Options{NoBuiltinTerms: true, Terms: []string{"zyloprimorex"}})
		res := only.Scan(context.Background(), Message{Text: "metformin and zyloprimorex"})
		if res.Counts[AccountTerm] != 1 || res.Counts[ClinicalTerm] != 0 {
			t.Errorf("counts = %v, want one account term", res.Counts)
		}
	})
	// An account term alone makes the message PHI at the default
	// threshold; a built-in term alone does not, however often it is
	// repeated. A built-in term the account also lists counts as the
	// account's.
	both := newTestScanner(t, Options{Terms: []string{"zyloprimorex", "metformin"}})
	for _, tt := range []struct {
		name, text string
		phi        bool
		ty         Type
	}{
		{"one account term", "Your zyloprimorex refill is ready.", true, AccountTerm},
		{"a built-in term the account lists", "Your metformin refill is ready.", true, AccountTerm},
		{"built-in terms only", "Learn about asthma, asthma triggers and asthma action plans.", false, ClinicalTerm},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := both.Scan(context.Background(), Message{Text: tt.text})
			if res.ContainsPHI != tt.phi || res.Counts[tt.ty] == 0 {
				t.Errorf("PHI %v (score %.2f, counts %v), want PHI %v with %s", res.ContainsPHI, res.Score, res.Counts, tt.phi, tt.ty)
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{"a pattern that does not compile is refused", Options{MRNPatterns: []MRNPattern{{Pattern: `(\d+`}}}, "mrn_patterns[0]"},
		{"a pattern matching the empty string is refused", Options{MRNPatterns: []MRNPattern{{Pattern: `\d*`}}}, "mrn_patterns[0]"},
		{"an overlong pattern is refused", Options{MRNPatterns: []MRNPattern{{Pattern: strings.Repeat("a", 201)}}}, "mrn_patterns[0]"},
		{"too many patterns are refused", Options{MRNPatterns: make([]MRNPattern, 21)}, "mrn_patterns"},
		{"an empty term is refused", Options{Terms: []string{"ok term", " "}}, "terms[1]"},
		{"a term without letters is refused", Options{Terms: []string{"12345"}}, "terms[0]"},
		{"an overlong term is refused", Options{Terms: []string{strings.Repeat("a", 101)}}, "terms[0]"},
		{"too many terms are refused", Options{Terms: make([]string, 5001)}, "terms"},
		{"a threshold above 1 is refused", Options{Threshold: 1.5}, "threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.opts)
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Field != tt.field {
				t.Fatalf("err = %v, want OptionError on %s", err, tt.field)
			}
		})
	}
}

// expiringContext reports DeadlineExceeded after its first left calls to
// Err, so a test can expire a scan at a chosen point without timing.
type expiringContext struct {
	context.Context
	left, calls int
}

func (c *expiringContext) Err() error {
	c.calls++
	if c.left > 0 {
		c.left--
		return nil
	}
	return context.DeadlineExceeded
}

// The worked examples in docs/dlp.md.
func TestDocumentedScores(t *testing.T) {
	t.Parallel()
	s := newTestScanner(t, Options{})
	tests := []struct {
		text  string
		score float64
	}{
		{"code E11.9", 0.52},
		{"taking metformin", 0.21},
		{"DOB 03/14/1962, taking metformin", 0.78},
		{"(415) 867-5309", 0.12},
		{"SSN 205-89-4542", 0.99},
		{"x 205-89-4542", 0.75},
	}
	for _, tt := range tests {
		if got := s.Scan(context.Background(), Message{Text: tt.text}).Score; got != tt.score {
			t.Errorf("score of %q = %v, want %v", tt.text, got, tt.score)
		}
	}
}

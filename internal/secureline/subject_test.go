package secureline

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStripSubjectTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, subject, tag, want string
		found                    bool
	}{
		{"a leading tag is removed", "[secure] Your lab results", "[secure]", "Your lab results", true},
		{"case does not matter", "[SeCuRe] Your lab results", "[secure]", "Your lab results", true},
		{"a trailing tag is removed", "Your lab results [SECURE]", "[secure]", "Your lab results", true},
		{"a tag in the middle leaves one space", "Your [secure] lab results", "[secure]", "Your lab results", true},
		{"a tag without spaces around it", "Results[secure]now", "[secure]", "Results now", true},
		{"every occurrence goes", "[secure] Results [secure]", "[secure]", "Results", true},
		{"adjacent tags go", "A [secure][secure] B", "[secure]", "A B", true},
		{"a subject that is only the tag becomes empty", "[secure]", "[secure]", "", true},
		{"no tag, no change", "Your lab results", "[secure]", "Your lab results", false},
		{"a partial tag is not the tag", "[secur] Your lab results", "[secure]", "[secur] Your lab results", false},
		{"a custom tag", "ENCRYPT: Results", "encrypt:", "Results", true},
		{"a word tag matches whole words only", "This is insecure", "secure", "This is insecure", false},
		{"a word tag matches as a word", "secure: results", "secure", ": results", true},
		{"a word tag before a letter is no match", "secured results", "secure", "secured results", false},
		{"non-ASCII text around the tag is kept", "Résultats [secure] d’analyse", "[secure]", "Résultats d’analyse", true},
		{"an empty tag matches nothing", "[secure] x", "", "[secure] x", false},
		{"header injection after the tag is left for the header checks", "[secure] Hi\r\nBcc: victim@example.org", "[secure]",
			"Hi\r\nBcc: victim@example.org", true},
		{"header injection before the tag is left as is", "Hi\r\nBcc: victim@example.org [secure]", "[secure]",
			"Hi\r\nBcc: victim@example.org", true},
		{"a CRLF inside the tag is no tag", "[sec\r\nure] Hi", "[secure]", "[sec\r\nure] Hi", false},
		{"trailing CRLF survives", "[secure] Hi\r\n", "[secure]", "Hi\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, found := StripSubjectTag(tt.subject, tt.tag)
			if got != tt.want || found != tt.found {
				t.Fatalf("StripSubjectTag(%q, %q) = %q, %v; want %q, %v", tt.subject, tt.tag, got, found, tt.want, tt.found)
			}
		})
	}
}

func TestValidateSubjectTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, tag string
		ok        bool
	}{
		{"the default", "[secure]", true},
		{"a word", "ENCRYPT", true},
		{"non-ASCII", "[sécurisé]", true},
		{"empty is refused", "", false},
		{"too long is refused", strings.Repeat("x", 33), false},
		{"32 bytes is allowed", strings.Repeat("x", 32), true},
		{"CR LF is refused", "[secure]\r\n", false},
		{"a tab is refused", "[se\tcure]", false},
		{"a leading space is refused", " [secure]", false},
		{"invalid UTF-8 is refused", "[secure\xff]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := ValidateSubjectTag(tt.tag); (err == nil) != tt.ok {
				t.Fatalf("ValidateSubjectTag(%q) = %v", tt.tag, err)
			}
		})
	}
}

func FuzzStripSubjectTag(f *testing.F) {
	f.Add("[secure] Your results", "[secure]")
	f.Add("Hi\r\nBcc: x@example.org [SECURE]", "[secure]")
	f.Add("secure insecure secured", "secure")
	f.Add("İ[secure]ß", "[secure]")
	f.Fuzz(func(t *testing.T, subject, tag string) {
		got, found := StripSubjectTag(subject, tag)
		if !found && got != subject {
			t.Fatalf("no tag but the subject changed: %q -> %q", subject, got)
		}
		if len(got) > len(subject) {
			t.Fatalf("the subject grew: %q -> %q", subject, got)
		}
		if !strings.ContainsAny(tag, "\r\n") && (strings.Count(got, "\n") != strings.Count(subject, "\n") || strings.Count(got, "\r") != strings.Count(subject, "\r")) {
			t.Fatalf("line breaks changed: %q -> %q", subject, got)
		}
		if utf8.ValidString(subject) && utf8.ValidString(tag) && !utf8.ValidString(got) {
			t.Fatalf("valid UTF-8 became invalid: %q -> %q", subject, got)
		}
		if found && ValidateSubjectTag(tag) == nil {
			if again, _ := StripSubjectTag(got, tag); len(again) > len(got) {
				t.Fatalf("stripping twice grew the subject")
			}
		}
	})
}

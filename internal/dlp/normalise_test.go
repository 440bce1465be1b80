package dlp

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestNormalise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"ASCII is unchanged", "SSN 205-89-4542", "SSN 205-89-4542"},
		{"zero-width characters are removed", "2\u200b0\u200c5\u200d-\ufeff89\u2060-4542", "205-89-4542"},
		{"soft hyphens are removed", "205\u00ad89\u00ad4542", "205894542"},
		{"bidi controls are removed", "\u202e205-89-4542\u202c", "205-89-4542"},
		{"full-width digits and dashes become ASCII", "２０５－８９－４５４２", "205-89-4542"},
		{"superscript and circled digits become ASCII", "²⁰⁵-⑧⑨-4542", "205-89-4542"},
		{"Arabic-Indic digits become ASCII", "٢٠٥-٨٩-٤٥٤٢", "205-89-4542"},
		{"Devanagari digits become ASCII", "२०५", "205"},
		{"Unicode dashes become hyphen-minus", "205\u201389\u20144542\u2212", "205-89-4542-"},
		{"Unicode spaces become spaces", "205\u00a089\u20094542\u3000x", "205 89 4542 x"},
		{"combining marks over digits are dropped", "2\u03320\u0332", "20"},
		{"combining marks over letters stay", "e\u0301", "é"},
		{"line separators become newlines", "a\u2028b", "a\nb"},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Normalise(tt.in); got != tt.want {
				t.Errorf("Normalise(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// digitValue assumes each Nd range is whole blocks of ten starting at a
// zero; this checks the assumption against the Unicode tables Go ships.
func TestDecimalDigitRangesAreWholeBlocks(t *testing.T) {
	t.Parallel()
	for _, r := range unicode.Nd.R16 {
		if r.Stride != 1 || (int(r.Hi)-int(r.Lo)+1)%10 != 0 {
			t.Errorf("Nd range %U-%U is not whole blocks of ten", r.Lo, r.Hi)
		}
	}
	for _, r := range unicode.Nd.R32 {
		if r.Stride != 1 || (int(r.Hi)-int(r.Lo)+1)%10 != 0 {
			t.Errorf("Nd range %U-%U is not whole blocks of ten", r.Lo, r.Hi)
		}
	}
}

func TestHTMLText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"entities are decoded", "a&amp;b &#50;&#x33; &nbsp;", "a&b 23 \u00a0"},
		{"inline tags join", "12<b>3</b>-<i>45</i>", "123-45"},
		{"block tags break", "<p>12</p><p>34</p>", "12\n34"},
		{"table cells break", "<td>12</td><td>34</td>", "12\n34"},
		{"whitespace collapses", "a \n\t b", "a b"},
		{"comments are kept", "a<!-- b -->c", "a\nb\nc"},
		{"text attributes are kept", `<img alt="x y" src="z">`, "x y\n"},
		{"script text is kept", "<script>var s='1'</script>", "var s='1'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := HTMLText(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(got) != strings.TrimSpace(tt.want) {
				t.Errorf("HTMLText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestChecksums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
		want bool
	}{
		{"CMS example NPI 1234567893 passes Luhn with 80840", validNPI([]byte("1234567893")), true},
		{"NPI 1234567890 fails", validNPI([]byte("1234567890")), false},
		{"DEA AB1234563 passes", validDEA("AB1234563"), true},
		{"DEA AB1234564 fails", validDEA("AB1234564"), false},
		{"DEA with 9 as second character passes", validDEA("A91234563"), true},
		{"ABA 021000021 passes", validABA([]byte("021000021")), true},
		{"ABA with routing symbol 13 fails", validABA([]byte("131000021")), false},
		{"Luhn 79927398713 passes", luhn([]byte("79927398713")), true},
		{"Luhn 79927398710 fails", luhn([]byte("79927398710")), false},
		{"CMS example MBI 1EG4TE5MK73 passes", validMBI("1EG4TE5MK73"), true},
		{"MBI with letter in position 4 fails", validMBI("1EGATE5MK73"), false},
		{"MBI with B fails", validMBI("1BG4TE5MK73"), false},
		{"NANP 415-867 is valid", validNANP([]byte("4158675309")), true},
		{"NANP area code N9X is reserved", validNANP([]byte("4958675309")), false},
		{"NANP exchange starting with 0 is invalid", validNANP([]byte("4150675309")), false},
	}
	for _, tt := range tests {
		if tt.ok != tt.want {
			t.Errorf("%s: got %v", tt.name, tt.ok)
		}
	}
}

func TestNormaliseOutputIsCleanUTF8(t *testing.T) {
	t.Parallel()
	in := "\xff\u200b１\u00ad\u202e"
	out := Normalise(in)
	if !utf8.ValidString(out) || strings.ContainsAny(out, "\u200b\u00ad\u202e") {
		t.Errorf("Normalise(%q) = %q", in, out)
	}
}

package tracking

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// testInstrumentation tracks clicks as https://sp.example/t/c/<n> for
// the n-th distinct target and records the targets.
func testInstrumentation(targets *[]string) Instrumentation {
	return Instrumentation{
		Click: func(target string) (string, bool) {
			*targets = append(*targets, target)
			return fmt.Sprintf("https://sp.example/t/c/%d", len(*targets)-1), true
		},
		Pixel:       "https://sp.example/t/o/P",
		Unsubscribe: "https://sp.example/u/U",
		Own:         "https://sp.example/",
	}
}

const px = `<img src="https://sp.example/t/o/P" width="1" height="1" alt="" style="border:0;width:1px;height:1px">`

func TestInstrumentRules(t *testing.T) {
	cases := []struct {
		name, in, want string
		targets        []string
	}{
		{"an http link is tracked and the pixel goes before </body>",
			`<html><body><a href="http://clinic.example/appt">Appointment</a></body></html>`,
			`<html><body><a href="https://sp.example/t/c/0">Appointment</a>` + px + `</body></html>`,
			[]string{"http://clinic.example/appt"}},
		{"the pixel goes at the end of a fragment without </body>",
			`<p>Hello</p>`, `<p>Hello</p>` + px, nil},
		{"mailto, tel, fragments and relative links stay",
			`<a href="mailto:a@clinic.example">m</a><a href="tel:+15551234">t</a><a href="#top">f</a><a href="/rel">r</a><a href="javascript:x()">j</a>`,
			`<a href="mailto:a@clinic.example">m</a><a href="tel:+15551234">t</a><a href="#top">f</a><a href="/rel">r</a><a href="javascript:x()">j</a>` + px, nil},
		{"data-sp-notrack leaves a link as written",
			`<A HREF="https://clinic.example/x" data-sp-notrack>x</A>`,
			`<A HREF="https://clinic.example/x" data-sp-notrack>x</A>` + px, nil},
		{"Sealpost's own links stay",
			`<a href="https://SP.example/u/other">u</a>`, `<a href="https://SP.example/u/other">u</a>` + px, nil},
		{"data-sp-unsubscribe becomes the recipient's unsubscribe link, untracked",
			`<a data-sp-unsubscribe href="https://clinic.example/prefs">Unsubscribe</a><a data-sp-unsubscribe>Stop</a>`,
			`<a data-sp-unsubscribe="" href="https://sp.example/u/U">Unsubscribe</a><a data-sp-unsubscribe="" href="https://sp.example/u/U">Stop</a>` + px, nil},
		{"entities in an href are decoded before tracking",
			`<a href="https://clinic.example/r?a=1&amp;b=2">r</a>`,
			`<a href="https://sp.example/t/c/0">r</a>` + px, []string{"https://clinic.example/r?a=1&b=2"}},
		{"surrounding spaces are dropped as browsers do, and upper-case schemes count",
			`<a href="  HTTPS://clinic.example/s ">s</a>`,
			`<a href="https://sp.example/t/c/0">s</a>` + px, []string{"HTTPS://clinic.example/s"}},
		{"other attributes are kept",
			`<a class="btn" href='https://clinic.example/b' title="Go &amp; see">b</a>`,
			`<a class="btn" href="https://sp.example/t/c/0" title="Go &amp; see">b</a>` + px, []string{"https://clinic.example/b"}},
		{"image maps are links too",
			`<map><area shape="rect" href="https://clinic.example/m"></map>`,
			`<map><area shape="rect" href="https://sp.example/t/c/0"></map>` + px, []string{"https://clinic.example/m"}},
		{"links in comments, scripts, styles and text are not anchors",
			`<!-- <a href="https://clinic.example/c">c</a> --><script>var a = '<a href="https://clinic.example/s">';</script><style>a[href="https://x.example"]{}</style><p>see https://clinic.example/t</p><textarea><a href="https://clinic.example/ta"></textarea>`,
			`<!-- <a href="https://clinic.example/c">c</a> --><script>var a = '<a href="https://clinic.example/s">';</script><style>a[href="https://x.example"]{}</style><p>see https://clinic.example/t</p><textarea><a href="https://clinic.example/ta"></textarea>` + px, nil},
		{"a </body> inside a script does not place the pixel",
			`<body><script>document.write("</body>")</script></body>`,
			`<body><script>document.write("</body>")</script>` + px + `</body>`, nil},
		{"a link without href and an <abbr> are not links",
			`<a name="top">t</a><abbr title="x">x</abbr>`, `<a name="top">t</a><abbr title="x">x</abbr>` + px, nil},
		{"malformed HTML: unclosed tags and attributes are tolerated",
			`<p><a href="https://clinic.example/u">unclosed<b>bold`,
			`<p><a href="https://sp.example/t/c/0">unclosed<b>bold` + px, []string{"https://clinic.example/u"}},
		{"malformed HTML: an unfinished tag at the end stays",
			`<p>x</p><a href="https://clinic.example/`, `<p>x</p>` + px + `<a href="https://clinic.example/`, nil},
		{"only the first of repeated hrefs counts, as in browsers; the rest go",
			`<a href="https://clinic.example/1" href="https://evil.example/2">d</a>`,
			`<a href="https://sp.example/t/c/0">d</a>` + px, []string{"https://clinic.example/1"}},
		{"a self-closing link tag is rewritten",
			`<a href="https://clinic.example/sc"/>`, `<a href="https://sp.example/t/c/0"/>` + px, []string{"https://clinic.example/sc"}},
		{"untouched markup keeps its bytes (case, quotes, spacing)",
			`<DIV  Class='x'>Hi<BR/></DIV></BODY>`, `<DIV  Class='x'>Hi<BR/></DIV>` + px + `</BODY>`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var targets []string
			got := Instrument(c.in, testInstrumentation(&targets))
			if got != c.want {
				t.Errorf("Instrument:\n got %s\nwant %s", got, c.want)
			}
			if strings.Join(targets, " ") != strings.Join(c.targets, " ") {
				t.Errorf("targets %q, want %q", targets, c.targets)
			}
		})
	}
}

func TestInstrumentWithNothingToDoIsTheIdentity(t *testing.T) {
	in := `<html><BODY><a href="https://clinic.example/x">x</a><img src=cid:logo></BODY></html>`
	if got := Instrument(in, Instrumentation{}); got != in {
		t.Errorf("got %s", got)
	}
}

func TestInstrumentWithoutClicksStillResolvesTheUnsubscribeLink(t *testing.T) {
	in := `<a href="https://clinic.example/x">x</a><a data-sp-unsubscribe href="#">u</a>`
	got := Instrument(in, Instrumentation{Unsubscribe: "https://sp.example/u/U"})
	want := `<a href="https://clinic.example/x">x</a><a data-sp-unsubscribe="" href="https://sp.example/u/U">u</a>`
	if got != want {
		t.Errorf("got %s", got)
	}
}

// FuzzInstrument checks that any input survives: with nothing to do the
// output is the input; with everything to do every link the tokenizer
// sees in the output is either tracked or one that must not be.
func FuzzInstrument(f *testing.F) {
	for _, s := range []string{`<a href="https://x.example">x</a>`, `<body></body>`, `<a href=`, `<<a href="http://a">`, `<!--`, `<script><a href="http://x">`,
		`<a data-sp-unsubscribe>`, "<a href=\"http://x\x00y\">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if got := Instrument(in, Instrumentation{}); got != in {
			t.Fatalf("identity broken: %q -> %q", in, got)
		}
		var targets []string
		out := Instrument(in, testInstrumentation(&targets))
		z := html.NewTokenizer(strings.NewReader(out))
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				break
			}
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			if tok.Data != "a" && tok.Data != "area" {
				continue
			}
			for _, a := range tok.Attr {
				if a.Key != "href" {
					continue
				}
				if _, ok := trackable(a.Val, "https://sp.example/"); ok && !hasAttr(tok, attrNoTrack) && !hasAttr(tok, attrUnsubscribe) {
					if u, _ := url.Parse(a.Val); u == nil || u.Host != "sp.example" {
						// A second href of one tag is ignored by browsers.
						if firstHref(tok) == a.Val {
							t.Fatalf("untracked link %q in %q (from %q)", a.Val, out, in)
						}
					}
				}
				break
			}
		}
	})
}

func hasAttr(tok html.Token, key string) bool {
	for _, a := range tok.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func firstHref(tok html.Token) string {
	for _, a := range tok.Attr {
		if a.Key == "href" {
			return a.Val
		}
	}
	return ""
}

// BenchmarkInstrument rewrites a typical 12 KiB marketing body with 20
// links.
func BenchmarkInstrument(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`<!doctype html><html><head><style>p{margin:0}</style></head><body><table>`)
	for i := range 20 {
		fmt.Fprintf(&sb, `<tr><td class="c"><p>Paragraph %d with some text about your care plan and options.</p><a href="https://clinic.example/page/%d?utm_source=mail&amp;utm_medium=email">Read more</a></td></tr>`, i, i)
		sb.WriteString(strings.Repeat(`<p>Filler text for realistic size.</p>`, 12))
	}
	sb.WriteString(`</table><a href="mailto:care@clinic.example">Mail us</a></body></html>`)
	src := sb.String()
	o := Instrumentation{
		Click: func(string) (string, bool) {
			return "https://sp.example/t/c/AQbxyzAQbxyzAQbxyzAQbxyzAQbxyzAQbxyzAQbxyzAQbxyzAQbxyzAQbxyz", true
		},
		Pixel:       "https://sp.example/t/o/P",
		Unsubscribe: "https://sp.example/u/U",
		Own:         "https://sp.example/",
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Instrument(src, o)
	}
}

package tracking

import (
	"bytes"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Instrumentation says how Instrument rewrites an HTML body. The zero
// value rewrites nothing: the output is then the input, byte for byte.
type Instrumentation struct {
	// Click returns the tracked URL standing for an absolute http(s)
	// target, or false to leave the link as it is. Nil tracks no clicks.
	Click func(target string) (string, bool)
	// Pixel is the URL of the open pixel; empty adds none.
	Pixel string
	// Unsubscribe replaces the href of links marked data-sp-unsubscribe
	// (added when missing); empty leaves them.
	Unsubscribe string
	// Own is the prefix of Sealpost's own URLs (http.public_url plus
	// "/"): links to it (unsubscribe pages, the portal) are never
	// rewritten.
	Own string
}

// Attributes an author puts on a link.
const (
	attrNoTrack     = "data-sp-notrack"     // leave this link alone
	attrUnsubscribe = "data-sp-unsubscribe" // this is the unsubscribe link
)

// Instrument returns src with its links and the open pixel rewritten as
// o says. It tokenizes the HTML (golang.org/x/net/html, the HTML5
// tokenization rules) rather than matching patterns, so links inside
// comments, scripts, styles or attribute values are never mistaken for
// anchors, and every token it does not change is copied byte for byte.
// Malformed HTML is tolerated the way browsers tolerate it. Only <a> and
// <area> hrefs that are absolute http or https URLs are tracked:
// mailto:, tel:, fragments (#top), relative links, Sealpost's own links
// and links marked data-sp-notrack stay as written. The pixel goes just
// before the first </body>, or at the end when there is none (where an
// unterminated comment or script would hide it: such bodies lose open
// tracking, nothing else).
func Instrument(src string, o Instrumentation) string {
	var out strings.Builder
	out.Grow(len(src) + 512)
	z := html.NewTokenizer(strings.NewReader(src))
	pixelDone := o.Pixel == ""
	for {
		tt := z.Next()
		raw := z.Raw()
		switch tt {
		case html.ErrorToken:
			// io.EOF. The tokenizer may still hold the text of an
			// unfinished tag, which goes out as it came in, after the
			// pixel: browsers drop a tag cut off by the end of the file
			// (HTML §13.2.5.1, eof-in-tag), and would drop a pixel
			// written after it with it.
			if !pixelDone {
				out.WriteString(pixelTag(o.Pixel))
			}
			out.Write(raw)
			return out.String()
		case html.StartTagToken, html.SelfClosingTagToken:
			if isLinkTag(raw) {
				// Token lower-cases names in the tokenizer's buffer,
				// which is raw: keep a copy to write when unchanged.
				orig := bytes.Clone(raw)
				tok := z.Token()
				if rewriteLink(&tok, o) {
					out.WriteString(tok.String())
				} else {
					out.Write(orig)
				}
				continue
			}
		case html.EndTagToken:
			if !pixelDone && hasTagName(raw[2:], "body") {
				out.WriteString(pixelTag(o.Pixel))
				pixelDone = true
			}
		}
		out.Write(raw)
	}
}

// isLinkTag reports whether a start tag's raw text opens <a> or <area>,
// without the tokenizer's in-place lower-casing.
func isLinkTag(raw []byte) bool {
	return len(raw) > 1 && (hasTagName(raw[1:], "a") || hasTagName(raw[1:], "area"))
}

// hasTagName reports whether b starts with the tag name name (ASCII
// case-insensitive, HTML §13.2.5.8) followed by the end of the name.
func hasTagName(b []byte, name string) bool {
	if len(b) < len(name) || !bytes.EqualFold(b[:len(name)], []byte(name)) {
		return false
	}
	if len(b) == len(name) {
		return true
	}
	switch b[len(name)] {
	case ' ', '\t', '\n', '\f', '\r', '/', '>':
		return true
	}
	return false
}

// rewriteLink changes tok's href as o says; false when it stays.
func rewriteLink(tok *html.Token, o Instrumentation) bool {
	href := -1
	var noTrack, unsubscribe bool
	for i, a := range tok.Attr {
		switch a.Key {
		case "href":
			if href < 0 { // browsers use the first of repeated attributes
				href = i
			}
		case attrNoTrack:
			noTrack = true
		case attrUnsubscribe:
			unsubscribe = true
		}
	}
	switch {
	case unsubscribe && o.Unsubscribe != "":
		if href < 0 {
			tok.Attr = append(tok.Attr, html.Attribute{Key: "href"})
			href = len(tok.Attr) - 1
		}
		tok.Attr[href].Val = o.Unsubscribe
		return true
	case unsubscribe, noTrack, href < 0, o.Click == nil:
		return false
	}
	target, ok := trackable(tok.Attr[href].Val, o.Own)
	if !ok {
		return false
	}
	tracked, ok := o.Click(target)
	if !ok {
		return false
	}
	tok.Attr[href].Val = tracked
	return true
}

// trackable returns the target of an href worth tracking: an absolute
// http or https URL that is not one of Sealpost's own.
func trackable(href, own string) (string, bool) {
	// Browsers strip leading and trailing C0 controls and spaces from a
	// URL (WHATWG URL §4.4, basic URL parser).
	target := strings.TrimFunc(href, func(r rune) bool { return r <= ' ' })
	if target == "" || len(target) > maxTargetLen {
		return "", false
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "", false
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return "", false
	}
	if own != "" && strings.HasPrefix(strings.ToLower(target), strings.ToLower(own)) {
		return "", false
	}
	return target, true
}

// maxTargetLen bounds a tracked URL; longer ones are left untracked.
const maxTargetLen = 8 << 10

// pixelTag is the open pixel: a 1x1 transparent GIF with an empty alt
// text, so screen readers skip it (WCAG 2.2 H67).
func pixelTag(src string) string {
	return `<img src="` + html.EscapeString(src) + `" width="1" height="1" alt="" style="border:0;width:1px;height:1px">`
}

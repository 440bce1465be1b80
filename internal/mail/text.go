package mail

import (
	"strings"

	xhtml "golang.org/x/net/html"
)

// blockTags start a new line in the text rendering.
var blockTags = map[string]bool{"p": true, "div": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"li": true, "tr": true, "table": true, "blockquote": true, "ul": true, "ol": true, "section": true, "article": true,
	"header": true, "footer": true, "hr": true, "pre": true}

// HTMLToText renders HTML as readable plain text for the text/plain
// alternative: scripts, styles and the head are dropped, links become
// "text (url)", block elements and <br> start lines, list items get "- ".
func HTMLToText(src string) string {
	z := xhtml.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	skip := 0 // inside script/style/head
	var href, linkText string
	inLink := false
	newline := func() {
		if str := b.String(); str != "" && !strings.HasSuffix(str, "\n") {
			b.WriteByte('\n')
		}
	}
	for {
		tt := z.Next()
		switch tt {
		case xhtml.ErrorToken:
			return tidy(b.String())
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken, xhtml.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			switch tag {
			case "script", "style", "head", "title":
				if tt == xhtml.StartTagToken {
					skip++
				} else if tt == xhtml.EndTagToken && skip > 0 {
					skip--
				}
				continue
			}
			if skip > 0 {
				continue
			}
			switch {
			case tag == "br":
				b.WriteByte('\n')
			case tag == "a" && tt == xhtml.StartTagToken:
				inLink, href, linkText = true, "", ""
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						href = string(v)
					}
				}
			case tag == "a" && tt == xhtml.EndTagToken && inLink:
				inLink = false
				t := strings.TrimSpace(linkText)
				b.WriteString(linkText)
				if href != "" && href != t && !strings.HasPrefix(href, "#") && !strings.HasPrefix(strings.ToLower(href), "javascript:") {
					b.WriteString(" (" + strings.TrimPrefix(href, "mailto:") + ")")
				}
			case blockTags[tag]:
				newline()
				if tag == "li" && tt == xhtml.StartTagToken {
					b.WriteString("- ")
				}
			}
		case xhtml.TextToken:
			if skip > 0 {
				continue
			}
			raw := string(z.Text()) // already unescaped; valid until the next token
			t := strings.Join(strings.Fields(raw), " ")
			if t != "" && (strings.HasPrefix(raw, " ") || strings.HasPrefix(raw, "\n")) {
				t = " " + t
			}
			if t != "" && (strings.HasSuffix(raw, " ") || strings.HasSuffix(raw, "\n")) {
				t += " "
			}
			if inLink {
				linkText += t
			} else {
				b.WriteString(t)
			}
		}
	}
}

// tidy trims each line, collapses spaces and keeps at most one blank line
// in a row.
func tidy(s string) string {
	var out []string
	blank := false
	for _, line := range strings.Split(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" {
			if !blank && len(out) > 0 {
				out = append(out, "")
			}
			blank = true
			continue
		}
		out = append(out, line)
		blank = false
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

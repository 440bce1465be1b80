package dlp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/unicode"
)

// HTMLText returns the text of an HTML document as the scanner reads it:
// character references decoded (HTML §13.5), tags removed, whitespace
// collapsed as a browser renders it, and a line break at each block or
// table-cell boundary so that words in different cells never join. Text
// that is sent but not shown is kept, because it leaves with the message
// all the same: comments, script and style contents, hidden elements, and
// the attributes that carry text (alt, title, value, placeholder,
// aria-label, content, href).
func HTMLText(src string) (string, error) {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	b.Grow(len(src) / 2)
	last := byte('\n') // last byte written; a fresh document starts a line
	pending := false   // a collapsed run of whitespace is owed
	write := func(s []byte) {
		for _, c := range s {
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
				pending = last != '\n'
				continue
			}
			if pending {
				b.WriteByte(' ')
				pending = false
			}
			b.WriteByte(c)
			last = c
		}
	}
	brk := func() {
		pending = false
		if last != '\n' {
			b.WriteByte('\n')
			last = '\n'
		}
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			if err := z.Err(); !errors.Is(err, io.EOF) {
				return "", err
			}
			return b.String(), nil
		case html.TextToken:
			write(z.Text())
		case html.CommentToken:
			brk()
			write(z.Text())
			brk()
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			var nb [16]byte
			if blockElements[string(tagName(z.Raw(), nb[:0]))] {
				brk()
			}
			for more := true; more; {
				var k, v []byte
				k, v, more = z.TagAttr()
				if textAttributes[string(k)] && len(v) > 0 {
					brk()
					write(v)
					brk()
				}
			}
		}
	}
}

// tagName reads the lowercased element name of a raw tag ("<TD class=x>",
// "</p>") into buf. Tokenizer.TagName would do, but allocates a copy per
// tag.
func tagName(raw, buf []byte) []byte {
	i := 1
	if i < len(raw) && raw[i] == '/' {
		i++
	}
	for ; i < len(raw) && len(buf) < cap(buf); i++ {
		c := raw[i]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		if !isAlnum(c) {
			break
		}
		buf = append(buf, c)
	}
	return buf
}

// blockElements end a line of text: what is on either side of them is
// never read as one word or number.
var blockElements = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "br": true,
	"caption": true, "dd": true, "div": true, "dl": true, "dt": true, "fieldset": true,
	"figcaption": true, "figure": true, "footer": true, "form": true, "h1": true,
	"h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "header": true,
	"hr": true, "li": true, "main": true, "nav": true, "ol": true, "p": true,
	"pre": true, "section": true, "table": true, "tbody": true, "td": true,
	"tfoot": true, "th": true, "thead": true, "title": true, "tr": true, "ul": true,
	"option": true, "select": true, "textarea": true, "head": true, "body": true,
	"html": true, "script": true, "style": true, "img": true, "input": true,
	"button": true, "label": true, "center": true,
}

var textAttributes = map[string]bool{
	"alt": true, "title": true, "value": true, "placeholder": true,
	"aria-label": true, "content": true, "href": true,
}

// filenameText is the scannable text of an attachment name: the extension
// dropped and '_' read as a space, so "dob_01-02-1980.csv" reads as words.
func filenameText(name string) string {
	name = strings.TrimSuffix(name, path.Ext(name))
	return strings.ReplaceAll(name, "_", " ")
}

// attachmentText decodes an attachment to the text the scanner reads. It
// returns a non-empty reason when the attachment cannot be read.
func attachmentText(a Attachment, limit int) (text string, isHTML bool, reason Reason) {
	if len(a.Content) > limit*2 {
		return "", false, ReasonOversize
	}
	data, err := decodeTransfer(a.TransferEncoding, a.Content)
	if err != nil {
		return "", false, ReasonBadEncoding
	}
	if len(data) > limit {
		return "", false, ReasonOversize
	}
	mt, params := mediaType(a, data)
	kind := textKind(mt)
	if kind == kindNone {
		return "", false, ReasonUnreadableType
	}
	s, reason := decodeCharset(data, params["charset"])
	if reason != "" {
		return "", false, reason
	}
	switch kind {
	case kindHTML:
		return s, true, ""
	case kindJSON:
		t, err := jsonText(s)
		if err != nil {
			return "", false, ReasonParseError
		}
		return t, false, ""
	case kindXML:
		t, err := xmlText(s)
		if err != nil {
			return "", false, ReasonParseError
		}
		return t, false, ""
	}
	return s, false, ""
}

// decodeTransfer undoes a MIME content transfer encoding (RFC 2045 §6).
func decodeTransfer(enc string, b []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "7bit", "8bit", "binary":
		return b, nil
	case "base64":
		// RFC 2045 §6.8: line breaks and other characters outside the
		// alphabet are ignored by decoders; we accept only whitespace and
		// refuse anything else as malformed.
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			n, err = base64.RawStdEncoding.Decode(out, clean)
		}
		return out[:n], err
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
	}
	return nil, errors.New("unknown transfer encoding")
}

type textKindT int

const (
	kindNone textKindT = iota
	kindText
	kindHTML
	kindJSON
	kindXML
)

// mediaType is the attachment's media type: declared, else guessed from
// the file name, else sniffed (WHATWG MIME Sniffing, via net/http).
func mediaType(a Attachment, data []byte) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(a.ContentType)
	if err == nil && mt != "application/octet-stream" {
		return mt, params
	}
	if params == nil {
		params = map[string]string{}
	}
	if t, ok := extensionTypes[strings.ToLower(path.Ext(a.Filename))]; ok {
		return t, params
	}
	sniffed, sp, _ := mime.ParseMediaType(http.DetectContentType(data))
	if sniffed == "text/plain" && params["charset"] == "" {
		params["charset"] = sp["charset"]
	}
	return sniffed, params
}

var extensionTypes = map[string]string{
	".txt": "text/plain", ".text": "text/plain", ".log": "text/plain", ".md": "text/markdown",
	".csv": "text/csv", ".tsv": "text/tab-separated-values", ".json": "application/json",
	".xml": "application/xml", ".html": "text/html", ".htm": "text/html",
	".hl7": "text/plain", ".vcf": "text/vcard", ".ics": "text/calendar",
	".eml": "message/rfc822", ".ndjson": "application/x-ndjson",
}

func textKind(mt string) textKindT {
	switch {
	case mt == "text/html" || mt == "application/xhtml+xml":
		return kindHTML
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return kindJSON
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		return kindXML
	case strings.HasPrefix(mt, "text/"), mt == "application/csv", mt == "application/x-ndjson",
		mt == "application/hl7-v2", mt == "application/edi-x12":
		return kindText
	}
	return kindNone
}

// decodeCharset turns text in the declared charset into UTF-8. A UTF-16
// byte order mark wins over the label. Text that is not text (NUL bytes,
// or mostly invalid UTF-8) cannot be read.
func decodeCharset(data []byte, charset string) (string, Reason) {
	var dec *encoding.Decoder
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		dec = unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewDecoder()
	case charset == "", strings.EqualFold(charset, "utf-8"), strings.EqualFold(charset, "us-ascii"), strings.EqualFold(charset, "utf8"):
	default:
		e, err := htmlindex.Get(charset)
		if err != nil {
			return "", ReasonUnknownCharset
		}
		dec = e.NewDecoder()
	}
	if dec != nil {
		out, err := dec.Bytes(data)
		if err != nil {
			return "", ReasonUnknownCharset
		}
		data = out
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if bytes.IndexByte(data, 0) >= 0 {
		return "", ReasonBinaryContent
	}
	if !utf8.Valid(data) {
		bad := 0
		for i := 0; i < len(data); {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n == 1 {
				bad++
			}
			i += n
		}
		if bad*100 > len(data) {
			return "", ReasonBinaryContent
		}
	}
	return string(data), ""
}

// jsonText is every key, string and number of a JSON document (RFC
// 8259), one per line, with escapes (\u0031...) decoded so they cannot
// hide digits. The document is validated first; the extraction then only
// has to find the tokens.
func jsonText(s string) (string, error) {
	if !json.Valid([]byte(s)) {
		return "", errors.New("invalid JSON")
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			j, escaped := i+1, false
			for s[j] != '"' {
				if s[j] == '\\' {
					escaped = true
					j++
				}
				j++
			}
			if escaped {
				var v string
				if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
					return "", err
				}
				b.WriteString(v)
			} else {
				b.WriteString(s[i+1 : j])
			}
			b.WriteByte('\n')
			i = j + 1
		case c == '-' || isDigit(c):
			j := i + 1
			for j < len(s) && strings.IndexByte("0123456789.eE+-", s[j]) >= 0 {
				j++
			}
			b.WriteString(s[i:j])
			b.WriteByte('\n')
			i = j
		default:
			i++
		}
	}
	return b.String(), nil
}

// xmlText is the character data, comments and attribute values of an XML
// document, entities decoded.
func xmlText(s string) (string, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Entity = xml.HTMLEntity
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		e, err := htmlindex.Get(label)
		if err != nil {
			return nil, err
		}
		return e.NewDecoder().Reader(r), nil
	}
	var b strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			for _, a := range t.Attr {
				b.WriteString(a.Value)
				b.WriteByte('\n')
			}
		case xml.CharData:
			b.Write(t)
		case xml.Comment:
			b.WriteByte('\n')
			b.Write(t)
			b.WriteByte('\n')
		case xml.EndElement:
			b.WriteByte('\n')
		}
	}
}

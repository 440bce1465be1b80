package dlp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// maxMIMEDepth bounds multipart and message/rfc822 nesting.
const maxMIMEDepth = 10

// ScanRaw scans a whole RFC 5322 message, as the SMTP relay receives it.
// The first inline text/plain and text/html parts are the Text and HTML
// bodies; every other leaf part, inline or attached, is an attachment in
// the order met (so Finding.Index counts those leaves). Parts are decoded
// from their transfer encoding and charset as Scan does; a message/rfc822
// part is opened and its parts scanned too. A message that is not valid
// MIME, nests deeper than ten levels or exceeds MaxAttachments parts is
// unscannable.
func (s *Scanner) ScanRaw(ctx context.Context, r io.Reader) Result {
	limit := int64(s.opts.MaxPartBytes) * int64(s.opts.MaxAttachments+2)
	w := &rawWalker{limit: s.opts.MaxPartBytes, maxParts: s.opts.MaxAttachments}
	br := bufio.NewReader(io.LimitReader(r, limit+1))
	msg, err := mail.ReadMessage(br)
	if err != nil {
		return s.failedRaw(ReasonMessageMalformed)
	}
	w.m.Subject = decodeHeader(msg.Header.Get("Subject"))
	if err := w.entity(textproto.MIMEHeader(msg.Header), msg.Body, 0); err != nil {
		return s.failedRaw(w.reason)
	}
	if _, err := br.Peek(1); err == nil {
		return s.failedRaw(ReasonOversize)
	}
	return s.Scan(ctx, w.m)
}

func (s *Scanner) failedRaw(r Reason) Result {
	sc := &scan{s: s, res: Result{Counts: map[Type]int{}}}
	sc.fail(PartText, 0, r)
	sc.finish()
	return sc.res
}

// rawWalker collects a MIME tree into a Message.
type rawWalker struct {
	m        Message
	limit    int
	maxParts int
	textSet  bool
	htmlSet  bool
	reason   Reason
}

var errRaw = errors.New("dlp: unscannable MIME")

func (w *rawWalker) fail(r Reason) error {
	w.reason = r
	return errRaw
}

// entity walks one MIME entity (RFC 2045 §2.4, RFC 2046 §5).
func (w *rawWalker) entity(h textproto.MIMEHeader, body io.Reader, depth int) error {
	if depth > maxMIMEDepth {
		return w.fail(ReasonTooManyParts)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii" // RFC 2045 §5.2
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return w.fail(ReasonMessageMalformed)
	}
	if strings.HasPrefix(mt, "multipart/") {
		if params["boundary"] == "" {
			return w.fail(ReasonMessageMalformed)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: keep the transfer encoding for decodeTransfer.
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return w.fail(ReasonMessageMalformed)
			}
			if err := w.entity(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	data, err := io.ReadAll(io.LimitReader(body, int64(w.limit)*2+1))
	if err != nil {
		return w.fail(ReasonMessageMalformed)
	}
	if len(data) > w.limit*2 {
		return w.fail(ReasonOversize)
	}
	cte := h.Get("Content-Transfer-Encoding")
	if mt == "message/rfc822" || mt == "message/global" {
		dec, err := decodeTransfer(cte, data)
		if err != nil {
			return w.fail(ReasonBadEncoding)
		}
		inner, err := mail.ReadMessage(bytes.NewReader(dec))
		if err != nil {
			return w.fail(ReasonMessageMalformed)
		}
		if sub := decodeHeader(inner.Header.Get("Subject")); sub != "" {
			w.add(Attachment{ContentType: "text/plain; charset=utf-8", Content: []byte(sub)})
		}
		return w.entity(textproto.MIMEHeader(inner.Header), inner.Body, depth+1)
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	inline := disp != "attachment" && filename == ""
	if inline && ((mt == "text/plain" && !w.textSet) || (mt == "text/html" && !w.htmlSet)) {
		dec, err := decodeTransfer(cte, data)
		if err != nil {
			return w.fail(ReasonBadEncoding)
		}
		text, reason := decodeCharset(dec, params["charset"])
		if reason != "" {
			return w.fail(reason)
		}
		if mt == "text/plain" {
			w.m.Text, w.textSet = text, true
		} else {
			w.m.HTML, w.htmlSet = text, true
		}
		return nil
	}
	return w.add(Attachment{Filename: decodeHeader(filename), ContentType: ct, TransferEncoding: cte, Content: data})
}

func (w *rawWalker) add(a Attachment) error {
	if len(w.m.Attachments) >= w.maxParts {
		return w.fail(ReasonTooManyParts)
	}
	w.m.Attachments = append(w.m.Attachments, a)
	return nil
}

// decodeHeader decodes RFC 2047 encoded words; what cannot be decoded is
// scanned as written.
func decodeHeader(s string) string {
	d := mime.WordDecoder{CharsetReader: func(label string, r io.Reader) (io.Reader, error) {
		e, err := htmlindex.Get(label)
		if err != nil {
			return nil, err
		}
		return e.NewDecoder().Reader(r), nil
	}}
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}

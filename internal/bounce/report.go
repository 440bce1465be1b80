package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/mail"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/sealpost/sealpost/internal/messages"
)

// Report kinds.
const (
	// KindDelivery is a delivery status notification (RFC 3464).
	KindDelivery = "delivery-status"
	// KindFeedback is an abuse feedback report (ARF, RFC 5965).
	KindFeedback = "feedback-report"
)

// Report is what a received message reports about mail we sent.
type Report struct {
	// Kind is KindDelivery, KindFeedback, or empty for anything else
	// (autoreplies, bounces in prose): nothing to act on.
	Kind string
	// ReportingMTA is the per-message Reporting-MTA (RFC 3464 §2.2.2).
	ReportingMTA string
	// ArrivalDate is the per-message Arrival-Date, as written.
	ArrivalDate string
	// Recipients are the per-recipient groups (RFC 3464 §2.3).
	Recipients []RecipientStatus
	// Feedback is the ARF report when Kind is KindFeedback.
	Feedback Feedback
	// ReturnedRcpts are the To and Cc addresses of the returned message
	// or its headers (the third part of a report), when readable.
	ReturnedRcpts []string
}

// RecipientStatus is one per-recipient group of a DSN (RFC 3464 §2.3).
type RecipientStatus struct {
	// FinalRecipient and OriginalRecipient are the addresses, without
	// their address type ("rfc822;").
	FinalRecipient    string
	OriginalRecipient string
	// Action is failed, delayed, delivered, relayed or expanded, in lower
	// case (§2.3.3); empty when missing or unknown.
	Action string
	// Status is the RFC 3463 code ("5.1.1"), taken from the Status field
	// or, when that is missing or malformed, from the diagnostic.
	Status string
	// DiagnosticType is the Diagnostic-Code's type ("smtp"), lower case.
	DiagnosticType string
	// Diagnostic is the Diagnostic-Code's text ("550 5.1.1 no such user").
	Diagnostic string
	// RemoteMTA is the Remote-MTA name (§2.3.5), without its type.
	RemoteMTA string
	// LastAttempt and WillRetryUntil are the dates as written.
	LastAttempt    string
	WillRetryUntil string
}

// Feedback is an ARF feedback report (RFC 5965 §3.1).
type Feedback struct {
	// Type is Feedback-Type in lower case: abuse, fraud, virus, other,
	// not-spam (RFC 6650), auth-failure (RFC 6591).
	Type             string
	UserAgent        string
	OriginalMailFrom string
	// OriginalRcptTo lists every Original-Rcpt-To (the complainant).
	OriginalRcptTo []string
	ArrivalDate    string
	ReportingMTA   string
}

// maxDepth bounds how deep Parse looks into nested multiparts.
const maxDepth = 4

// maxPart bounds the bytes read of one report part.
const maxPart = 1 << 20

// maxGroups bounds the per-recipient groups kept of one DSN: no message
// has more recipients (messages.MaxRawRecipients).
const maxGroups = messages.MaxRawRecipients

// Parse reads a received message and returns what it reports. A message
// that is not a report (or is too broken to read) gives a Report with an
// empty Kind and an error saying why; callers drop such mail rather than
// refuse it, so the remote does not retry it forever.
func Parse(raw []byte) (Report, error) {
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return Report{}, err
	}
	var r Report
	if err := r.walk(e, 0); err != nil {
		return Report{}, err
	}
	return r, nil
}

// walk looks through the entity for report parts: RFC 6522 puts the
// machine-readable part second in a multipart/report, but some gateways
// wrap the report in another multipart, so every part is visited.
func (r *Report) walk(e *message.Entity, depth int) error {
	if depth > maxDepth {
		return errors.New("bounce: report nested too deep")
	}
	typ, _, _ := e.Header.ContentType()
	mr := e.MultipartReader()
	if mr == nil {
		return r.part(typ, e.Body)
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			if r.Kind != "" {
				return nil // a broken trailing part after the report
			}
			return err
		}
		if err := r.walk(p, depth+1); err != nil {
			return err
		}
	}
}

func (r *Report) part(typ string, body io.Reader) error {
	switch typ {
	case "message/delivery-status", "message/global-delivery-status": // RFC 3464 §2.1, RFC 6533 §6.2
		data, err := io.ReadAll(io.LimitReader(body, maxPart))
		if err != nil {
			return err
		}
		if r.Kind == "" {
			r.Kind = KindDelivery
			r.delivery(parseFields(data))
		}
	case "message/feedback-report": // RFC 5965 §3.1
		data, err := io.ReadAll(io.LimitReader(body, maxPart))
		if err != nil {
			return err
		}
		if r.Kind == "" {
			r.Kind = KindFeedback
			r.feedback(parseFields(data))
		}
	case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
		// RFC 6522 §3: the returned message or its header.
		h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(body, maxPart)))
		if err != nil && h.Len() == 0 {
			return nil // the returned part is optional; a broken one is ignored
		}
		for _, k := range []string{"To", "Cc"} {
			if list, err := mail.ParseAddressList(h.Get(k)); err == nil {
				for _, a := range list {
					r.ReturnedRcpts = append(r.ReturnedRcpts, a.Address)
				}
			}
		}
	}
	return nil
}

func (r *Report) delivery(blocks []block) {
	for _, b := range blocks {
		if len(r.Recipients) >= maxGroups {
			return
		}
		if !b.isRecipient() {
			for _, f := range b {
				switch f.name {
				case "reporting-mta":
					r.ReportingMTA = typed(f.value)
				case "arrival-date":
					r.ArrivalDate = f.value
				}
			}
			continue
		}
		var rs RecipientStatus
		for _, f := range b {
			switch f.name {
			case "final-recipient":
				rs.FinalRecipient = address(f.value)
			case "original-recipient":
				rs.OriginalRecipient = address(f.value)
			case "action":
				rs.Action = action(f.value)
			case "status":
				rs.Status = statusCode(f.value)
			case "diagnostic-code":
				rs.DiagnosticType, rs.Diagnostic = splitTyped(f.value)
			case "remote-mta":
				rs.RemoteMTA = typed(f.value)
			case "last-attempt-date":
				rs.LastAttempt = f.value
			case "will-retry-until":
				rs.WillRetryUntil = f.value
			}
		}
		// A missing Status, or an unspecific X.0.0 one, takes the
		// diagnostic's enhanced code of the same class: Gmail reports
		// "Status: 5.0.0" with "550 5.1.1 ..." in the diagnostic.
		if d := enhancedIn(rs.Diagnostic); d != "" && (rs.Status == "" || (strings.HasSuffix(rs.Status, ".0.0") && d[0] == rs.Status[0])) {
			rs.Status = d
		}
		r.Recipients = append(r.Recipients, rs)
	}
}

func (r *Report) feedback(blocks []block) {
	for _, b := range blocks {
		for _, f := range b {
			switch f.name {
			case "feedback-type":
				r.Feedback.Type = strings.ToLower(firstWord(f.value))
			case "user-agent":
				r.Feedback.UserAgent = f.value
			case "original-mail-from":
				r.Feedback.OriginalMailFrom = address(f.value)
			case "original-rcpt-to":
				if a := address(f.value); a != "" {
					r.Feedback.OriginalRcptTo = append(r.Feedback.OriginalRcptTo, a)
				}
			case "arrival-date", "received-date":
				r.Feedback.ArrivalDate = f.value
			case "reporting-mta":
				r.Feedback.ReportingMTA = typed(f.value)
			}
		}
	}
}

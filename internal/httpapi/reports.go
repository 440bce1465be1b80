package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
)

// Reports (summary counts, recipient rows as JSON pages or one CSV file)
// and rescheduling of scheduled messages.

func (s *Server) reportRoutes() {
	s.HandleScoped("GET /v1/reports/summary", auth.ScopeMessagesRead, http.HandlerFunc(s.reportSummary))
	s.HandleScoped("GET /v1/reports/recipients", auth.ScopeMessagesRead, http.HandlerFunc(s.reportRecipients))
	s.HandleScoped("GET /v1/reports/recipients.csv", auth.ScopeMessagesRead, http.HandlerFunc(s.reportRecipientsCSV))
}

// reportParams are the query parameters of each report; any other is
// refused, so a misspelt filter never silently widens a report.
var reportParams = map[string][]string{
	"summary":    {"from", "to", "group_by", "tag", "domain", "limit", "cursor"},
	"recipients": {"from", "to", "tag", "domain", "limit", "cursor"},
	"csv":        {"from", "to", "tag", "domain"},
}

// parseReportQuery reads a report's query parameters; every problem is a
// 400 naming the parameter.
func parseReportQuery(values url.Values, report string) (messages.ReportQuery, *Problem) {
	var q messages.ReportQuery
	bad := func(field, msg string) (messages.ReportQuery, *Problem) {
		return messages.ReportQuery{}, NewProblem(TypeBadRequest, "invalid query parameter "+field).WithErrors(FieldError{Field: field, Message: msg})
	}
	allowed := reportParams[report]
	for name, vs := range values {
		if !contains(allowed, name) {
			if name == "" {
				name = "(empty name)"
			}
			return bad(truncate(name, maxEchoedFieldName), "unknown parameter")
		}
		if len(vs) > 1 {
			return bad(name, "given more than once")
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		v := values.Get(t.name)
		if v == "" {
			return bad(t.name, "required: an RFC 3339 date-time")
		}
		ts, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return bad(t.name, "an RFC 3339 date-time such as 2026-01-31T00:00:00Z")
		}
		*t.dst = ts
	}
	if !q.From.Before(q.To) {
		return bad("to", "must be after from")
	}
	if q.To.Sub(q.From) > messages.MaxReportRange {
		return bad("to", "at most 93 days after from")
	}
	switch q.GroupBy = values.Get("group_by"); q.GroupBy {
	case "", messages.GroupDay, messages.GroupHour, messages.GroupNone:
	default:
		return bad("group_by", "day, hour or none")
	}
	if v := values.Get("tag"); len(v) > 100 {
		return bad("tag", "at most 100 characters")
	}
	q.Tag = values.Get("tag")
	if v := values.Get("domain"); v != "" {
		d, err := domains.Normalize(v)
		if err != nil {
			return bad("domain", "a domain name such as clinic.example.org")
		}
		q.Domain = d
	}
	if v := values.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return bad("limit", "an integer from 1 to 1000")
		}
		q.Limit = n
	}
	if v := values.Get("cursor"); len(v) > maxCursorLen {
		return bad("cursor", "invalid or expired cursor")
	}
	q.Cursor = values.Get("cursor")
	return q, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Server) reportSummary(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	q, perr := parseReportQuery(r.URL.Query(), "summary")
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	sum, err := s.opts.Messages.Summarize(r.Context(), p.AccountID, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, sum)
}

func (s *Server) reportRecipients(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	q, perr := parseReportQuery(r.URL.Query(), "recipients")
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	page, err := s.opts.Messages.RecipientRows(r.Context(), p.AccountID, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, pageOf(page.Rows, page.NextCursor))
}

// csvHeader names the export's columns.
var csvHeader = []string{"message_id", "created_at", "from", "recipient", "kind", "state", "attempts", "delivered_at",
	"remote_host", "tls_version", "smtp_code", "tags"}

// csvPageWrite bounds the time a client may take to read one page of the
// export; the whole file may take longer than the server's write timeout.
const csvPageWrite = 60 * time.Second

// reportRecipientsCSV streams the recipient rows of a range as one CSV
// file (RFC 4180), a keyset page of rows at a time, so a large range
// never sits in memory. A failure after the first row aborts the
// connection, so a client never mistakes a cut file for a whole one.
func (s *Server) reportRecipientsCSV(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	q, perr := parseReportQuery(r.URL.Query(), "csv")
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	q.Limit = messages.MaxRowPage
	page, err := s.opts.Messages.RecipientRows(r.Context(), p.AccountID, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="recipients-`+q.From.UTC().Format("20060102T150405Z")+"-"+
		q.To.UTC().Format("20060102T150405Z")+`.csv"`)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(csvPageWrite))
		for _, row := range page.Rows {
			_ = cw.Write(csvRecord(row))
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return // the client went away
		}
		if page.NextCursor == "" {
			return
		}
		q.Cursor = page.NextCursor
		if page, err = s.opts.Messages.RecipientRows(r.Context(), p.AccountID, q); err != nil {
			if !errors.Is(err, r.Context().Err()) {
				s.log.LogAttrs(r.Context(), slog.LevelError, "recipient export failed",
					slog.String("request_id", requestID(r.Context())), slog.String("error", err.Error()))
			}
			panic(http.ErrAbortHandler)
		}
	}
}

func csvRecord(row messages.RecipientRow) []string {
	delivered := ""
	if row.DeliveredAt != nil {
		delivered = row.DeliveredAt.UTC().Format(time.RFC3339Nano)
	}
	tags, _ := json.Marshal(row.Tags) // a JSON array: tags may hold any separator
	smtpCode := ""
	if row.SMTPCode != 0 {
		smtpCode = strconv.Itoa(row.SMTPCode)
	}
	rec := []string{row.MessageID, row.CreatedAt.UTC().Format(time.RFC3339Nano), row.From, row.Recipient, row.Kind, row.State,
		strconv.Itoa(row.Attempts), delivered, row.RemoteHost, row.TLSVersion, smtpCode, string(tags)}
	for i, v := range rec {
		rec[i] = defuseFormula(v)
	}
	return rec
}

// defuseFormula keeps a spreadsheet from running a cell as a formula
// (CSV injection, OWASP): a value starting with =, +, -, @, tab or
// carriage return gets a leading apostrophe.
func defuseFormula(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// rescheduleMessage moves a scheduled message's send time.
func (s *Server) rescheduleMessage(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	var q struct {
		SendAt *time.Time `json:"send_at"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("message_id")
	// Another account's message is not found, whatever the body says.
	if _, err := s.opts.Messages.Get(r.Context(), p.AccountID, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if q.SendAt == nil {
		writeProblem(w, r, NewProblem(TypeValidation, "send_at is required").
			WithErrors(FieldError{Field: "send_at", Message: "required: an RFC 3339 date-time"}))
		return
	}
	m, err := s.opts.Messages.Reschedule(r.Context(), p.AccountID, id, *q.SendAt)
	if errors.Is(err, messages.ErrNotReschedulable) {
		writeProblem(w, r, NewProblem(TypeConflict, "delivery of the message has begun, finished or been cancelled; it can no longer be rescheduled"))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, m)
}

package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
)

// AuditReader lists an account's audit events. It returns an error
// wrapping audit.ErrBadCursor for a cursor it cannot resume from.
type AuditReader interface {
	List(ctx context.Context, accountID string, q audit.Query) (audit.Page, error)
}

// Limits of the listAuditEvents parameters, as in api/openapi.yaml.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 500
	maxFilterLen      = 200
	maxCursorLen      = 512
)

// listAuditEvents serves GET /v1/audit-events for the principal's account.
func (s *Server) listAuditEvents(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	q, perr := parseAuditQuery(r.URL.RawQuery)
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	page, err := s.opts.Audit.List(r.Context(), p.AccountID, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := pageOf(page.Events, page.NextCursor)
	for i := range out.Data {
		if out.Data[i].Details == nil {
			out.Data[i].Details = map[string]string{}
		}
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// parseAuditQuery validates the query string of listAuditEvents. All
// problems are reported together; values are never echoed.
func parseAuditQuery(raw string) (audit.Query, *Problem) {
	q := audit.Query{Limit: auditDefaultLimit}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return q, NewProblem(TypeBadRequest, "the query string is malformed")
	}
	var errs []FieldError
	bad := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }
	for name, vs := range values {
		switch name {
		case "since", "until", "action", "actor_id", "cursor", "limit":
			if len(vs) > 1 {
				bad(name, "must be given at most once")
			}
		default:
			bad(clipName(name), "unknown parameter")
		}
	}

	q.Since = parseTimeParam(values, "since", bad)
	q.Until = parseTimeParam(values, "until", bad)
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		bad("until", "must be after since")
	}
	q.Action = parseTextParam(values, "action", maxFilterLen, bad)
	q.ActorID = parseTextParam(values, "actor_id", maxFilterLen, bad)
	q.Cursor = parseTextParam(values, "cursor", maxCursorLen, bad)
	if values.Has("limit") {
		n, err := strconv.Atoi(values.Get("limit"))
		switch {
		case err != nil:
			bad("limit", "must be an integer")
		case n < 1 || n > auditMaxLimit:
			bad("limit", "must be between 1 and "+strconv.Itoa(auditMaxLimit))
		default:
			q.Limit = n
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return q, NewProblem(TypeBadRequest, "invalid query parameters").WithErrors(errs...)
	}
	return q, nil
}

// parseTimeParam reads an RFC 3339 instant (with an offset, as
// api/openapi.yaml's date-time requires).
func parseTimeParam(values url.Values, name string, bad func(field, msg string)) time.Time {
	if !values.Has(name) {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, values.Get(name))
	if err != nil {
		bad(name, "must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z")
		return time.Time{}
	}
	return t
}

// parseTextParam reads a non-empty UTF-8 string of at most max characters.
func parseTextParam(values url.Values, name string, max int, bad func(field, msg string)) string {
	if !values.Has(name) {
		return ""
	}
	v := values.Get(name)
	switch {
	case v == "":
		bad(name, "must not be empty")
	case !utf8.ValidString(v):
		bad(name, "must be UTF-8 text")
	case utf8.RuneCountInString(v) > max:
		bad(name, "must be at most "+strconv.Itoa(max)+" characters")
	default:
		return v
	}
	return ""
}

package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/portal"
)

// PortalLister lists the caller's account's portal messages (package
// portal), newest first, never their content.
type PortalLister interface {
	List(ctx context.Context, accountID string, f portal.ListFilter) (portal.Page, error)
}

// Limits of the listPortalMessages parameters, as in api/openapi.yaml.
const (
	maxPortalMessageIDLen = 100
	maxRecipientLen       = 320 // RFC 5321 §4.5.3.1: 64-octet local part, @, 255-octet domain
)

func (s *Server) portalListRoutes() {
	s.HandleScoped("GET /v1/portal-messages", auth.ScopeMessagesRead, http.HandlerFunc(s.listPortalMessages))
}

func (s *Server) listPortalMessages(w http.ResponseWriter, r *http.Request) {
	f, perr := parsePortalListQuery(r.URL.RawQuery)
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	page, err := s.opts.Portal.List(r.Context(), actor(r).Principal.AccountID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, pageOf(page.Messages, page.NextCursor))
}

// parsePortalListQuery validates the query string of listPortalMessages.
// All problems are reported together; values are never echoed.
func parsePortalListQuery(raw string) (portal.ListFilter, *Problem) {
	f := portal.ListFilter{Limit: portal.DefaultListLimit}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return f, NewProblem(TypeBadRequest, "the query string is malformed")
	}
	var errs []FieldError
	bad := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }
	for name, vs := range values {
		switch name {
		case "message_id", "recipient", "state", "cursor", "limit":
			if len(vs) > 1 {
				bad(name, "must be given at most once")
			}
		default:
			bad(clipName(name), "unknown parameter")
		}
	}
	f.MessageID = parseTextParam(values, "message_id", maxPortalMessageIDLen, bad)
	f.Recipient = parseTextParam(values, "recipient", maxRecipientLen, bad)
	if f.Recipient != "" && !strings.Contains(f.Recipient, "@") {
		bad("recipient", "must be an email address")
	}
	f.State = parseTextParam(values, "state", maxFilterLen, bad)
	if f.State != "" && !slices.Contains(portal.ListStates, f.State) {
		bad("state", "must be one of "+strings.Join(portal.ListStates, ", "))
	}
	f.Cursor = parseTextParam(values, "cursor", maxCursorLen, bad)
	if values.Has("limit") {
		n, err := strconv.Atoi(values.Get("limit"))
		switch {
		case err != nil:
			bad("limit", "must be an integer")
		case n < 1 || n > portal.MaxListLimit:
			bad("limit", "must be between 1 and "+strconv.Itoa(portal.MaxListLimit))
		default:
			f.Limit = n
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return f, NewProblem(TypeBadRequest, "invalid query parameters").WithErrors(errs...)
	}
	return f, nil
}

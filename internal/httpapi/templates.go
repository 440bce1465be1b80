package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/templates"
)

// TemplateService stores accounts' templates and renders them.
type TemplateService interface {
	Create(ctx context.Context, accountID string, nt templates.NewTemplate) (templates.Template, error)
	List(ctx context.Context, accountID string, limit int, cursor string) (templates.Page, error)
	Get(ctx context.Context, accountID, id string) (templates.Template, error)
	AddVersion(ctx context.Context, accountID, id string, c templates.Content, activate bool) (templates.Template, error)
	Activate(ctx context.Context, accountID, id string, version int) (templates.Template, error)
	Delete(ctx context.Context, accountID, id string) error
	Render(ctx context.Context, accountID, id string, version int, data map[string]any) (templates.Rendered, error)
}

// Problem types of templates.
const (
	// TypeTemplateInvalid: a template source breaks the language's rules.
	TypeTemplateInvalid ProblemType = "urn:sealpost:problem:template-invalid"
	// TypeTemplateRender: a template failed to render with the data.
	TypeTemplateRender ProblemType = "urn:sealpost:problem:template-render"
	// TypeUnknownTemplate: a send names a template the account lacks.
	TypeUnknownTemplate ProblemType = "urn:sealpost:problem:unknown-template"
)

// templateProblem maps template errors to problems; ok is false for
// other errors.
func templateProblem(err error) (*Problem, bool) {
	var te *templates.Error
	var me *messages.TemplateError
	switch {
	case errors.Is(err, messages.ErrUnknownTemplate):
		return NewProblem(TypeUnknownTemplate, "the account has no such template or template version").
			WithErrors(FieldError{Field: "template_id", Message: "no such template or version"}), true
	case errors.As(err, &me):
		p := templateErrorProblem(me.Err)
		if me.Recipient != "" {
			p.Detail = "the template failed to render for " + me.Recipient + ": " + me.Err.Error()
		}
		return p, true
	case errors.As(err, &te):
		return templateErrorProblem(te), true
	case errors.Is(err, templates.ErrNameTaken):
		return NewProblem(TypeConflict, "the account already has a template of this name").
			WithErrors(FieldError{Field: "name", Message: "already used"}), true
	case errors.Is(err, templates.ErrBadCursor):
		return NewProblem(TypeBadRequest, "the cursor is invalid or expired").
			WithErrors(FieldError{Field: "cursor", Message: "invalid or expired cursor"}), true
	case errors.Is(err, templates.ErrInvalid):
		return NewProblem(TypeValidation, "the template keeps at most 1000 versions"), true
	}
	return nil, false
}

func templateErrorProblem(te *templates.Error) *Problem {
	msg := te.Message
	if te.Line > 0 {
		msg = fmt.Sprintf("line %d", te.Line)
		if te.Column > 0 {
			msg += fmt.Sprintf(", column %d", te.Column)
		}
		msg += ": " + te.Message
	}
	t := TypeTemplateRender
	if errors.Is(te, templates.ErrSyntax) {
		t = TypeTemplateInvalid
	}
	return NewProblem(t, te.Error()).WithErrors(FieldError{Field: te.Part, Message: msg})
}

func (s *Server) templateRoutes() {
	s.HandleScoped("POST /v1/templates", auth.ScopeMessagesSend, http.HandlerFunc(s.createTemplate))
	s.HandleScoped("GET /v1/templates", auth.ScopeMessagesRead, http.HandlerFunc(s.listTemplates))
	s.HandleScoped("GET /v1/templates/{template_id}", auth.ScopeMessagesRead, http.HandlerFunc(s.getTemplate))
	s.HandleScoped("DELETE /v1/templates/{template_id}", auth.ScopeMessagesSend, http.HandlerFunc(s.deleteTemplate))
	s.HandleScoped("POST /v1/templates/{template_id}/versions", auth.ScopeMessagesSend, http.HandlerFunc(s.addTemplateVersion))
	s.HandleScoped("PUT /v1/templates/{template_id}/active-version", auth.ScopeMessagesSend, http.HandlerFunc(s.activateTemplateVersion))
	s.HandleScoped("POST /v1/templates/{template_id}/render", auth.ScopeMessagesRead, http.HandlerFunc(s.renderTemplate))
}

func accountOf(r *http.Request) string {
	p, _ := auth.FromContext(r.Context())
	return p.AccountID
}

func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Name             string `json:"name"`
		MissingVariables string `json:"missing_variables"`
		templates.Content
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p := requireFields([2]string{"name", q.Name}); p != nil {
		writeProblem(w, r, p)
		return
	}
	t, err := s.opts.Templates.Create(r.Context(), accountOf(r), templates.NewTemplate{Name: q.Name,
		MissingVariables: templates.Policy(q.MissingVariables), Content: q.Content})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/templates/"+t.ID)
	s.writeJSON(w, r, http.StatusCreated, t)
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(field, msg string) {
		writeProblem(w, r, NewProblem(TypeBadRequest, "invalid query parameter "+field).WithErrors(FieldError{Field: field, Message: msg}))
	}
	for name := range q {
		if name != "limit" && name != "cursor" {
			bad(truncate(name, maxEchoedFieldName), "unknown parameter")
			return
		}
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			bad("limit", "an integer from 1 to 500")
			return
		}
		limit = n
	}
	if len(q.Get("cursor")) > maxCursorLen {
		bad("cursor", "invalid or expired cursor")
		return
	}
	page, err := s.opts.Templates.List(r.Context(), accountOf(r), limit, q.Get("cursor"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, pageOf(page.Templates, page.NextCursor))
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) {
	t, err := s.opts.Templates.Get(r.Context(), accountOf(r), r.PathValue("template_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, t)
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Templates.Delete(r.Context(), accountOf(r), r.PathValue("template_id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) addTemplateVersion(w http.ResponseWriter, r *http.Request) {
	var q struct {
		templates.Content
		Activate bool `json:"activate"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.opts.Templates.AddVersion(r.Context(), accountOf(r), r.PathValue("template_id"), q.Content, q.Activate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, t)
}

func (s *Server) activateTemplateVersion(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Version int `json:"version"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	if q.Version < 1 {
		// Another account's template is not found before the body is judged.
		if _, err := s.opts.Templates.Get(r.Context(), accountOf(r), r.PathValue("template_id")); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeProblem(w, r, NewProblem(TypeValidation, "version must be a version number from 1").
			WithErrors(FieldError{Field: "version", Message: "a version number from 1"}))
		return
	}
	t, err := s.opts.Templates.Activate(r.Context(), accountOf(r), r.PathValue("template_id"), q.Version)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, t)
}

func (s *Server) renderTemplate(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Version int            `json:"version"`
		Data    map[string]any `json:"data"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	if q.Version < 0 {
		writeProblem(w, r, NewProblem(TypeValidation, "version must be a version number from 1").
			WithErrors(FieldError{Field: "version", Message: "a version number from 1"}))
		return
	}
	out, err := s.opts.Templates.Render(r.Context(), accountOf(r), r.PathValue("template_id"), q.Version, q.Data)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/portal"
)

// PortalService deposits, reports on and recalls the caller's account's
// portal messages, and keeps its portal settings (package portal).
type PortalService interface {
	Deposit(ctx context.Context, d portal.Deposit) (portal.Deposited, error)
	Get(ctx context.Context, accountID, id string) (portal.Status, error)
	Recall(ctx context.Context, accountID, id string, actor portal.Actor) (portal.Status, error)
	Settings(ctx context.Context, accountID string) (portal.Settings, error)
	SetSettings(ctx context.Context, accountID string, actor portal.Actor, st portal.Settings) error
	PortalLister
}

func (s *Server) portalRoutes() {
	s.HandleScoped("POST /v1/portal-messages", auth.ScopeMessagesSend, http.HandlerFunc(s.depositPortalMessage))
	s.HandleScoped("GET /v1/portal-messages/{portal_message_id}", auth.ScopeMessagesRead, http.HandlerFunc(s.getPortalMessage))
	s.HandleScoped("POST /v1/portal-messages/{portal_message_id}/recall", auth.ScopeMessagesSend, http.HandlerFunc(s.recallPortalMessage))
	s.HandleScoped("GET /v1/portal-settings", auth.ScopeMessagesRead, http.HandlerFunc(s.getPortalSettings))
	s.HandleScoped("PUT /v1/portal-settings", auth.ScopeAdmin, http.HandlerFunc(s.putPortalSettings))
	s.portalListRoutes()
}

// portalDepositRequest is the PortalMessageRequest schema.
type portalDepositRequest struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Subject     string `json:"subject"`
	Text        string `json:"text"`
	HTML        string `json:"html"`
	Attachments []struct {
		Filename    string `json:"filename"`
		ContentType string `json:"content_type"`
		Content     []byte `json:"content"` // base64 in JSON
	} `json:"attachments"`
	Challenge *struct {
		Kind   string `json:"kind"`
		Answer string `json:"answer"`
		Hint   string `json:"hint"`
	} `json:"challenge"`
}

func portalActor(a account.Actor) portal.Actor {
	return portal.Actor{Kind: string(a.Principal.ActorKind), ID: a.Principal.ActorID, SourceIP: a.SourceIP, RequestID: a.RequestID}
}

func (s *Server) depositPortalMessage(w http.ResponseWriter, r *http.Request) {
	var req portalDepositRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	a := actor(r)
	d := portal.Deposit{AccountID: a.Principal.AccountID, Recipient: req.To, Sender: req.From, Actor: portalActor(a),
		Content: portal.Content{Subject: req.Subject, Text: req.Text, HTML: req.HTML}}
	for _, f := range req.Attachments {
		d.Content.Attachments = append(d.Content.Attachments, portal.Attachment{Filename: f.Filename, ContentType: f.ContentType, Content: f.Content})
	}
	if c := req.Challenge; c != nil {
		d.Challenge = &portal.Challenge{Kind: c.Kind, Answer: c.Answer, Hint: c.Hint}
	}
	dep, err := s.opts.Portal.Deposit(r.Context(), d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.opts.Portal.Get(r.Context(), a.Principal.AccountID, dep.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/portal-messages/"+dep.ID)
	s.writeJSON(w, r, http.StatusAccepted, st)
}

func (s *Server) getPortalMessage(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.Portal.Get(r.Context(), actor(r).Principal.AccountID, r.PathValue("portal_message_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, st)
}

func (s *Server) recallPortalMessage(w http.ResponseWriter, r *http.Request) {
	a := actor(r)
	st, err := s.opts.Portal.Recall(r.Context(), a.Principal.AccountID, r.PathValue("portal_message_id"), portalActor(a))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, st)
}

func (s *Server) getPortalSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.Portal.Settings(r.Context(), actor(r).Principal.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, st)
}

// portalSettingsRequest is the PortalSettings schema with every field
// required: a PUT replaces the whole.
// (How long portal messages stay readable is portal_message_days of
// /v1/retention-policy.)
type portalSettingsRequest struct {
	DisplayName  *string `json:"display_name"`
	LogoURL      *string `json:"logo_url"`
	PrimaryColor *string `json:"primary_color"`
}

func (s *Server) putPortalSettings(w http.ResponseWriter, r *http.Request) {
	var req portalSettingsRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	var missing []FieldError
	for name, set := range map[string]bool{"display_name": req.DisplayName != nil, "logo_url": req.LogoURL != nil,
		"primary_color": req.PrimaryColor != nil} {
		if !set {
			missing = append(missing, FieldError{Field: name, Message: "required"})
		}
	}
	if len(missing) > 0 {
		slices.SortFunc(missing, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		writeProblem(w, r, NewProblem(TypeValidation, "every setting is required (use \"\" for the default)").WithErrors(missing...))
		return
	}
	st := portal.Settings{DisplayName: *req.DisplayName, LogoURL: *req.LogoURL, PrimaryColor: *req.PrimaryColor}
	a := actor(r)
	if err := s.opts.Portal.SetSettings(r.Context(), a.Principal.AccountID, portalActor(a), st); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.getPortalSettings(w, r)
}

// portalProblem maps the portal's errors (problemFor asks it first).
func portalProblem(err error) (*Problem, bool) {
	var fe *portal.FieldError
	switch {
	case errors.As(err, &fe):
		return NewProblem(TypeValidation, fe.Message).WithErrors(FieldError{Field: fe.Field, Message: fe.Message}), true
	case errors.Is(err, portal.ErrNotFound):
		return NewProblem(TypeNotFound, "no such portal message in this account"), true
	case errors.Is(err, portal.ErrNotConfigured):
		return NewProblem(TypeConflict, "the portal takes no messages: this server has no public URL (http.public_url)"), true
	case errors.Is(err, portal.ErrBadCursor):
		return NewProblem(TypeBadRequest, "the cursor is invalid or expired").
			WithErrors(FieldError{Field: "cursor", Message: "invalid or expired cursor"}), true
	}
	return nil, false
}

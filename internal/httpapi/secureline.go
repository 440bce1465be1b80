package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/secureline"
)

// SecureLineService is the encryption decision engine (package
// secureline): the account's settings and the preflight.
type SecureLineService interface {
	Settings(ctx context.Context, accountID string) (secureline.Settings, error)
	SetSettings(ctx context.Context, actor account.Actor, st secureline.Settings) error
	Preflight(ctx context.Context, accountID string, req secureline.PreflightRequest) (secureline.PreflightResult, error)
}

func (s *Server) securelineRoutes() {
	s.HandleScoped("POST /v1/secureline/preflight", auth.ScopeMessagesSend, http.HandlerFunc(s.preflight))
	s.HandleScoped("GET /v1/secureline/settings", auth.ScopeAdmin, http.HandlerFunc(s.getSecureLineSettings))
	s.HandleScoped("PUT /v1/secureline/settings", auth.ScopeAdmin, http.HandlerFunc(s.putSecureLineSettings))
}

// preflightRequest is the Preflight schema.
type preflightRequest struct {
	From        string   `json:"from"`
	Recipients  []string `json:"recipients"`
	Encryption  string   `json:"encryption"`
	ContainsPHI *bool    `json:"contains_phi"`
	Subject     string   `json:"subject"`
	Text        string   `json:"text"`
	HTML        string   `json:"html"`
	Kind        string   `json:"kind"`
	Tags        []string `json:"tags"`
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	var q preflightRequest
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, p := q.toRequest()
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	res, err := s.opts.SecureLine.Preflight(r.Context(), actor(r).Principal.AccountID, req)
	if err != nil {
		s.writeError(w, r, securelineError(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

func (q preflightRequest) toRequest() (secureline.PreflightRequest, *Problem) {
	var errs []FieldError
	from, err := mail.ParseAddress("from", q.From)
	if err != nil {
		errs = append(errs, FieldError{Field: "from", Message: fieldMessage(err)})
	}
	if len(q.Recipients) == 0 || len(q.Recipients) > secureline.MaxPreflightRecipients {
		errs = append(errs, FieldError{Field: "recipients", Message: fmt.Sprintf("must hold 1 to %d addresses", secureline.MaxPreflightRecipients)})
	}
	req := secureline.PreflightRequest{From: from.Addr(), Pin: q.Encryption, ContainsPHI: q.ContainsPHI, Subject: q.Subject,
		Kind: q.Kind, Tags: q.Tags}
	if err := policy.ValidateMessageFacts(q.Kind, q.Tags); err != nil {
		var fe *mail.FieldError
		errors.As(err, &fe)
		errs = append(errs, FieldError{Field: fe.Field, Message: fe.Message})
	}
	for i, raw := range q.Recipients {
		field := fmt.Sprintf("recipients[%d]", i)
		a, err := mail.ParseAddress(field, raw)
		if err != nil {
			errs = append(errs, FieldError{Field: field, Message: fieldMessage(err)})
			continue
		}
		req.Recipients = append(req.Recipients, secureline.Recipient{Address: a.Addr(), Domain: a.Domain})
	}
	if !secureline.ValidPin(q.Encryption) {
		errs = append(errs, FieldError{Field: "encryption", Message: "must be auto, tls, pgp, smime or portal"})
	}
	if q.Subject != "" || q.Text != "" || q.HTML != "" {
		req.Content = &dlp.Message{Subject: q.Subject, Text: q.Text, HTML: q.HTML}
	}
	if len(errs) > 0 {
		return req, NewProblem(TypeValidation, "the preflight request is not valid").WithErrors(errs...)
	}
	return req, nil
}

func fieldMessage(err error) string {
	var fe *mail.FieldError
	if errors.As(err, &fe) {
		return fe.Message
	}
	return "invalid"
}

// securelineError maps the engine's validation errors to problems.
func securelineError(err error) error {
	var fe *secureline.FieldError
	if errors.As(err, &fe) {
		return NewProblem(TypeValidation, "field "+fe.Field+" "+fe.Message).WithErrors(FieldError{Field: fe.Field, Message: fe.Message})
	}
	return err
}

func (s *Server) getSecureLineSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.SecureLine.Settings(r.Context(), actor(r).Principal.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, st)
}

// secureLineSettingsRequest is the SecureLineSettings schema: a PUT
// replaces the whole, so mode and subject_tag are required, and
// wkd_enabled, added later, is false when left out (an older client that
// never heard of it leaves WKD off, which is never weaker: TLS or the
// portal instead of a discovered key).
type secureLineSettingsRequest struct {
	Mode       *string `json:"mode"`
	SubjectTag *string `json:"subject_tag"`
	WKDEnabled *bool   `json:"wkd_enabled"`
}

func (s *Server) putSecureLineSettings(w http.ResponseWriter, r *http.Request) {
	var q secureLineSettingsRequest
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	var missing []FieldError
	if q.Mode == nil {
		missing = append(missing, FieldError{Field: "mode", Message: "required"})
	}
	if q.SubjectTag == nil {
		missing = append(missing, FieldError{Field: "subject_tag", Message: "required"})
	}
	if len(missing) > 0 {
		writeProblem(w, r, NewProblem(TypeValidation, "mode and subject_tag are both required").WithErrors(missing...))
		return
	}
	st := secureline.Settings{Mode: secureline.Mode(*q.Mode), SubjectTag: *q.SubjectTag, WKDEnabled: q.WKDEnabled != nil && *q.WKDEnabled}
	if err := s.opts.SecureLine.SetSettings(r.Context(), actor(r), st); err != nil {
		s.writeError(w, r, securelineError(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, st)
}

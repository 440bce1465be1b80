package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/retention"
)

// RetentionAdmin reads and replaces the caller's account's retention
// periods (package retention).
type RetentionAdmin interface {
	Policy(ctx context.Context, accountID string) (retention.Policy, error)
	SetPolicy(ctx context.Context, actor account.Actor, p retention.Policy) (retention.Policy, error)
}

func (s *Server) retentionRoutes() {
	s.HandleScoped("GET /v1/retention-policy", auth.ScopeAdmin, http.HandlerFunc(s.getRetentionPolicy))
	s.HandleScoped("PUT /v1/retention-policy", auth.ScopeAdmin, http.HandlerFunc(s.putRetentionPolicy))
}

func (s *Server) getRetentionPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.opts.Retention.Policy(r.Context(), actor(r).Principal.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, p)
}

// retentionPolicyRequest is the RetentionPolicyInput schema: a PUT
// replaces the whole, so every field is required.
type retentionPolicyRequest struct {
	MessageBodyDays   *int `json:"message_body_days"`
	PortalMessageDays *int `json:"portal_message_days"`
	QuarantineDays    *int `json:"quarantine_days"`
}

func (s *Server) putRetentionPolicy(w http.ResponseWriter, r *http.Request) {
	var req retentionPolicyRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	var p retention.Policy
	var missing []FieldError
	for _, f := range []struct {
		name string
		in   *int
		out  *int
	}{
		{"message_body_days", req.MessageBodyDays, &p.MessageBodyDays},
		{"portal_message_days", req.PortalMessageDays, &p.PortalMessageDays},
		{"quarantine_days", req.QuarantineDays, &p.QuarantineDays},
	} {
		if f.in == nil {
			missing = append(missing, FieldError{Field: f.name, Message: "required"})
			continue
		}
		*f.out = *f.in
	}
	if len(missing) > 0 {
		writeProblem(w, r, NewProblem(TypeValidation, "every retention period is required").WithErrors(missing...))
		return
	}
	stored, err := s.opts.Retention.SetPolicy(r.Context(), actor(r), p)
	var invalid *retention.InvalidPolicyError
	if errors.As(err, &invalid) {
		prob := NewProblem(TypeValidation, "retention periods must be whole days between 1 and 3650")
		for _, i := range invalid.Issues {
			prob.WithErrors(FieldError{Field: i.Field, Message: i.Message})
		}
		writeProblem(w, r, prob)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, stored)
}

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/policy"
)

// DLPPolicyAdmin reads, replaces and dry-runs the caller's account's DLP
// policy (package policy).
type DLPPolicyAdmin interface {
	Document(ctx context.Context, accountID string) (policy.Document, error)
	Replace(ctx context.Context, actor account.Actor, rules []policy.RuleInput) (policy.Document, error)
	DryRun(ctx context.Context, accountID string, m policy.DryRunMessage) (policy.DryRunResult, error)
}

// QuarantineAdmin lists and reviews the caller's account's quarantined
// messages.
type QuarantineAdmin interface {
	List(ctx context.Context, accountID string, q policy.ListQuery) (policy.Page, error)
	Release(ctx context.Context, actor account.Actor, messageID string) (policy.Entry, error)
	Reject(ctx context.Context, actor account.Actor, messageID string) (policy.Entry, error)
}

func (s *Server) dlpPolicyRoutes() {
	s.HandleScoped("GET /v1/dlp-policy", auth.ScopeAdmin, http.HandlerFunc(s.getDLPPolicy))
	s.HandleScoped("PUT /v1/dlp-policy", auth.ScopeAdmin, http.HandlerFunc(s.putDLPPolicy))
	s.HandleScoped("POST /v1/dlp-policy/dry-run", auth.ScopeMessagesSend, http.HandlerFunc(s.dryRunDLPPolicy))
}

func (s *Server) quarantineRoutes() {
	s.HandleScoped("GET /v1/quarantine", auth.ScopeAdmin, http.HandlerFunc(s.listQuarantine))
	s.HandleScoped("POST /v1/quarantine/{message_id}/release", auth.ScopeAdmin, http.HandlerFunc(s.releaseQuarantine))
	s.HandleScoped("POST /v1/quarantine/{message_id}/reject", auth.ScopeAdmin, http.HandlerFunc(s.rejectQuarantine))
}

func (s *Server) getDLPPolicy(w http.ResponseWriter, r *http.Request) {
	doc, err := s.opts.DLP.Document(r.Context(), actor(r).Principal.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, doc)
}

// dlpPolicyRequest is the DLPPolicyInput schema: the whole ordered list.
type dlpPolicyRequest struct {
	Rules *[]policy.RuleInput `json:"rules"`
}

func (s *Server) putDLPPolicy(w http.ResponseWriter, r *http.Request) {
	var req dlpPolicyRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Rules == nil {
		writeProblem(w, r, NewProblem(TypeValidation, "rules is required (an empty list removes every rule)").
			WithErrors(FieldError{Field: "rules", Message: "required"}))
		return
	}
	doc, err := s.opts.DLP.Replace(r.Context(), actor(r), *req.Rules)
	if err != nil {
		s.writePolicyError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, doc)
}

// dryRunRequest is the DLPDryRunRequest schema: the fields of
// MessageRequest that a decision reads.
type dryRunRequest struct {
	From        string   `json:"from"`
	To          []string `json:"to"`
	Cc          []string `json:"cc"`
	Bcc         []string `json:"bcc"`
	Subject     string   `json:"subject"`
	Text        string   `json:"text"`
	HTML        string   `json:"html"`
	Attachments []struct {
		Filename    string `json:"filename"`
		ContentType string `json:"content_type"`
		Content     []byte `json:"content"` // base64 in JSON
	} `json:"attachments"`
	Tags []string `json:"tags"`
	Kind string   `json:"kind"`
}

func (s *Server) dryRunDLPPolicy(w http.ResponseWriter, r *http.Request) {
	var req dryRunRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	m := policy.DryRunMessage{From: req.From, To: req.To, Cc: req.Cc, Bcc: req.Bcc, Subject: req.Subject, Text: req.Text,
		HTML: req.HTML, Tags: req.Tags, Kind: req.Kind}
	for _, a := range req.Attachments {
		m.Attachments = append(m.Attachments, dlp.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content})
	}
	res, err := s.opts.DLP.DryRun(r.Context(), actor(r).Principal.AccountID, m)
	if err != nil {
		s.writePolicyError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

// writePolicyError maps package policy's errors; the rest go to
// problemFor.
func (s *Server) writePolicyError(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *policy.InvalidError
	switch {
	case errors.As(err, &invalid):
		prob := NewProblem(TypeValidation, "the DLP policy is invalid: "+invalid.Issues[0].Field+" "+invalid.Issues[0].Message)
		for _, i := range invalid.Issues {
			prob.WithErrors(FieldError{Field: i.Field, Message: i.Message})
		}
		writeProblem(w, r, prob)
	case errors.Is(err, policy.ErrReviewed):
		writeProblem(w, r, NewProblem(TypeConflict, "the message was already released or rejected"))
	case errors.Is(err, policy.ErrBadCursor):
		writeProblem(w, r, NewProblem(TypeBadRequest, "the cursor is invalid or expired").
			WithErrors(FieldError{Field: "cursor", Message: "invalid or expired cursor"}))
	default:
		s.writeError(w, r, err)
	}
}

func (s *Server) listQuarantine(w http.ResponseWriter, r *http.Request) {
	q, perr := parseQuarantineQuery(r.URL.Query())
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	page, err := s.opts.Quarantine.List(r.Context(), actor(r).Principal.AccountID, q)
	if err != nil {
		s.writePolicyError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, pageOf(page.Entries, page.NextCursor))
}

func parseQuarantineQuery(v url.Values) (policy.ListQuery, *Problem) {
	var q policy.ListQuery
	var errs []FieldError
	for name, vals := range v {
		switch name {
		case "status", "cursor", "limit":
			if len(vals) > 1 {
				errs = append(errs, FieldError{Field: name, Message: "must be given at most once"})
			}
		default:
			errs = append(errs, FieldError{Field: clipName(name), Message: "unknown parameter"})
		}
	}
	switch st := policy.Status(v.Get("status")); st {
	case "", policy.StatusPending, policy.StatusReleased, policy.StatusRejected:
		q.Status = st
	default:
		errs = append(errs, FieldError{Field: "status", Message: "one of pending, released, rejected"})
	}
	if c := v.Get("cursor"); len(c) > maxCursorLen {
		errs = append(errs, FieldError{Field: "cursor", Message: "invalid or expired cursor"})
	} else {
		q.Cursor = c
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			errs = append(errs, FieldError{Field: "limit", Message: "an integer from 1 to 500"})
		}
		q.Limit = n
	}
	if len(errs) > 0 {
		return q, NewProblem(TypeBadRequest, "invalid query parameters").WithErrors(errs...)
	}
	return q, nil
}

func (s *Server) releaseQuarantine(w http.ResponseWriter, r *http.Request) {
	s.reviewQuarantine(w, r, s.opts.Quarantine.Release)
}

func (s *Server) rejectQuarantine(w http.ResponseWriter, r *http.Request) {
	s.reviewQuarantine(w, r, s.opts.Quarantine.Reject)
}

func (s *Server) reviewQuarantine(w http.ResponseWriter, r *http.Request,
	review func(context.Context, account.Actor, string) (policy.Entry, error)) {
	e, err := review(r.Context(), actor(r), r.PathValue("message_id"))
	if err != nil {
		s.writePolicyError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, e)
}

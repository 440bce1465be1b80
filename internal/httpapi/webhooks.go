package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/webhooks"
)

// WebhookAdmin manages the caller's account's webhooks and their delivery
// log.
type WebhookAdmin interface {
	Create(ctx context.Context, actor account.Actor, spec webhooks.Spec) (webhooks.WithSecret, error)
	List(ctx context.Context, accountID string) ([]webhooks.Webhook, error)
	Get(ctx context.Context, accountID, id string) (webhooks.Webhook, error)
	Update(ctx context.Context, actor account.Actor, id string, c webhooks.Change) (webhooks.Webhook, error)
	Delete(ctx context.Context, actor account.Actor, id string) error
	RotateSecret(ctx context.Context, actor account.Actor, id string, keepPrevious time.Duration) (webhooks.WithSecret, error)
	Deliveries(ctx context.Context, accountID, webhookID string, f webhooks.DeliveryFilter) (webhooks.DeliveryPage, error)
	Replay(ctx context.Context, accountID, webhookID, id string) (webhooks.Delivery, error)
	Test(ctx context.Context, accountID, webhookID string) (webhooks.Delivery, error)
}

// apiWebhook is the Webhook schema of api/openapi.yaml; Secret is set only
// in the answers of create and rotate-secret.
type apiWebhook struct {
	ID                  string     `json:"id"`
	URL                 string     `json:"url"`
	Events              []string   `json:"events"`
	Enabled             bool       `json:"enabled"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	PreviousSecretUntil *time.Time `json:"previous_secret_valid_until"`
	Secret              string     `json:"secret,omitempty"`
}

func toAPIWebhook(w webhooks.Webhook) apiWebhook {
	return apiWebhook{ID: w.ID, URL: w.URL, Events: w.Events, Enabled: w.Enabled, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		PreviousSecretUntil: optionalTime(w.PreviousSecretUntil)}
}

func (s *Server) webhookRoutes() {
	s.HandleScoped("GET /v1/webhooks", auth.ScopeAdmin, http.HandlerFunc(s.listWebhooks))
	s.HandleScoped("POST /v1/webhooks", auth.ScopeAdmin, http.HandlerFunc(s.createWebhook))
	s.HandleScoped("GET /v1/webhooks/{webhook_id}", auth.ScopeAdmin, http.HandlerFunc(s.getWebhook))
	s.HandleScoped("PATCH /v1/webhooks/{webhook_id}", auth.ScopeAdmin, http.HandlerFunc(s.updateWebhook))
	s.HandleScoped("DELETE /v1/webhooks/{webhook_id}", auth.ScopeAdmin, http.HandlerFunc(s.deleteWebhook))
	s.HandleScoped("POST /v1/webhooks/{webhook_id}/rotate-secret", auth.ScopeAdmin, http.HandlerFunc(s.rotateWebhookSecret))
	s.HandleScoped("POST /v1/webhooks/{webhook_id}/test", auth.ScopeAdmin, http.HandlerFunc(s.testWebhook))
	s.HandleScoped("GET /v1/webhooks/{webhook_id}/deliveries", auth.ScopeAdmin, http.HandlerFunc(s.listWebhookDeliveries))
	s.HandleScoped("POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", auth.ScopeAdmin, http.HandlerFunc(s.replayWebhookDelivery))
}

// webhookError maps the webhooks package's errors to problems; the rest
// go through problemFor.
func (s *Server) webhookError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *webhooks.FieldError
	switch {
	case errors.As(err, &fe):
		writeProblem(w, r, NewProblem(TypeValidation, fe.Message).WithErrors(FieldError{Field: fe.Field, Message: fe.Message}))
	case errors.Is(err, webhooks.ErrBusy):
		writeProblem(w, r, NewProblem(TypeConflict, "the webhook or delivery is being changed or attempted right now; try again"))
	case errors.Is(err, webhooks.ErrTooMany):
		writeProblem(w, r, NewProblem(TypeConflict, "the account has the most webhooks allowed ("+strconv.Itoa(webhooks.MaxWebhooks)+")"))
	case errors.Is(err, webhooks.ErrBadCursor):
		writeProblem(w, r, NewProblem(TypeBadRequest, "the cursor is invalid or expired").
			WithErrors(FieldError{Field: "cursor", Message: "invalid or expired cursor"}))
	default:
		s.writeError(w, r, err)
	}
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	list, err := s.opts.Webhooks.List(r.Context(), p.AccountID)
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, listOf(list, toAPIWebhook))
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	var q struct {
		URL     string   `json:"url"`
		Events  []string `json:"events"`
		Enabled *bool    `json:"enabled"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.opts.Webhooks.Create(r.Context(), actor(r), webhooks.Spec{URL: q.URL, Events: q.Events, Enabled: q.Enabled})
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	out := toAPIWebhook(created.Webhook)
	out.Secret = created.Secret
	w.Header().Set("Location", "/v1/webhooks/"+created.ID)
	w.Header().Set("Cache-Control", "no-store") // the secret is shown once
	s.writeJSON(w, r, http.StatusCreated, out)
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	h, err := s.opts.Webhooks.Get(r.Context(), p.AccountID, r.PathValue("webhook_id"))
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAPIWebhook(h))
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	var q struct {
		URL     *string   `json:"url"`
		Events  *[]string `json:"events"`
		Enabled *bool     `json:"enabled"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	h, err := s.opts.Webhooks.Update(r.Context(), actor(r), r.PathValue("webhook_id"), webhooks.Change{URL: q.URL, Events: q.Events, Enabled: q.Enabled})
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAPIWebhook(h))
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Webhooks.Delete(r.Context(), actor(r), r.PathValue("webhook_id")); err != nil {
		s.webhookError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	keep := webhooks.DefaultPreviousSecretTTL
	// The body is optional: none (no length, no type) keeps the default.
	if r.ContentLength > 0 || (r.ContentLength < 0 && r.Header.Get("Content-Type") != "") {
		var q struct {
			KeepPreviousSeconds *int64 `json:"keep_previous_seconds"`
		}
		if err := decodeJSON(r, &q); err != nil {
			s.writeError(w, r, err)
			return
		}
		if q.KeepPreviousSeconds != nil {
			if *q.KeepPreviousSeconds < 0 || *q.KeepPreviousSeconds > int64(webhooks.MaxPreviousSecret/time.Second) {
				writeProblem(w, r, NewProblem(TypeValidation, "keep_previous_seconds must be from 0 to 604800").
					WithErrors(FieldError{Field: "keep_previous_seconds", Message: "from 0 to 604800"}))
				return
			}
			keep = time.Duration(*q.KeepPreviousSeconds) * time.Second
		}
	}
	rotated, err := s.opts.Webhooks.RotateSecret(r.Context(), actor(r), r.PathValue("webhook_id"), keep)
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	out := toAPIWebhook(rotated.Webhook)
	out.Secret = rotated.Secret
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, r, http.StatusOK, out)
}

func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	d, err := s.opts.Webhooks.Test(r.Context(), p.AccountID, r.PathValue("webhook_id"))
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, d)
}

func (s *Server) replayWebhookDelivery(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	d, err := s.opts.Webhooks.Replay(r.Context(), p.AccountID, r.PathValue("webhook_id"), r.PathValue("delivery_id"))
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, d)
}

func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	f, perr := parseDeliveryFilter(r.URL.Query())
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	page, err := s.opts.Webhooks.Deliveries(r.Context(), p.AccountID, r.PathValue("webhook_id"), f)
	if err != nil {
		s.webhookError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, pageOf(page.Deliveries, page.NextCursor))
}

func parseDeliveryFilter(q url.Values) (webhooks.DeliveryFilter, *Problem) {
	var f webhooks.DeliveryFilter
	bad := func(field, msg string) (webhooks.DeliveryFilter, *Problem) {
		return webhooks.DeliveryFilter{}, NewProblem(TypeBadRequest, "invalid query parameter "+field).WithErrors(FieldError{Field: field, Message: msg})
	}
	for name := range q {
		switch name {
		case "limit", "cursor", "status":
		default:
			return bad(truncate(name, maxEchoedFieldName), "unknown parameter")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return bad("limit", "an integer from 1 to 500")
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); len(v) > maxCursorLen {
		return bad("cursor", "invalid or expired cursor")
	}
	f.Cursor = q.Get("cursor")
	if v := q.Get("status"); v != "" {
		if !slices.Contains(webhooks.Statuses(), v) {
			return bad("status", "one of pending, retrying, succeeded, failed")
		}
		f.Status = v
	}
	return f, nil
}

package httpapi

import (
	"context"
	"net/http"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/tracking"
)

// TrackingSettingsAdmin reads and replaces the caller's account's
// tracking defaults (package tracking).
type TrackingSettingsAdmin interface {
	Defaults(ctx context.Context, accountID string) (tracking.Defaults, error)
	SetDefaults(ctx context.Context, actor account.Actor, d tracking.Defaults) error
}

func (s *Server) trackingSettingsRoutes() {
	s.HandleScoped("GET /v1/tracking-settings", auth.ScopeMessagesRead, http.HandlerFunc(s.getTrackingSettings))
	s.HandleScoped("PUT /v1/tracking-settings", auth.ScopeAdmin, http.HandlerFunc(s.putTrackingSettings))
}

func (s *Server) getTrackingSettings(w http.ResponseWriter, r *http.Request) {
	d, err := s.opts.TrackingSettings.Defaults(r.Context(), actor(r).Principal.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, d)
}

// trackingSettingsRequest is the TrackingSettings schema with every
// field required: a PUT replaces the whole.
type trackingSettingsRequest struct {
	Transactional *trackingKindRequest `json:"transactional"`
	Marketing     *trackingKindRequest `json:"marketing"`
}

type trackingKindRequest struct {
	Opens  *bool `json:"opens"`
	Clicks *bool `json:"clicks"`
}

func (s *Server) putTrackingSettings(w http.ResponseWriter, r *http.Request) {
	var req trackingSettingsRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	var d tracking.Defaults
	var missing []FieldError
	for _, k := range []struct {
		name string
		in   *trackingKindRequest
		out  *tracking.Settings
	}{{"transactional", req.Transactional, &d.Transactional}, {"marketing", req.Marketing, &d.Marketing}} {
		if k.in == nil {
			missing = append(missing, FieldError{Field: k.name, Message: "required"})
			continue
		}
		if k.in.Opens == nil {
			missing = append(missing, FieldError{Field: k.name + ".opens", Message: "required"})
		} else {
			k.out.Opens = *k.in.Opens
		}
		if k.in.Clicks == nil {
			missing = append(missing, FieldError{Field: k.name + ".clicks", Message: "required"})
		} else {
			k.out.Clicks = *k.in.Clicks
		}
	}
	if len(missing) > 0 {
		writeProblem(w, r, NewProblem(TypeValidation, "both kinds of message need opens and clicks").WithErrors(missing...))
		return
	}
	if err := s.opts.TrackingSettings.SetDefaults(r.Context(), actor(r), d); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, d)
}

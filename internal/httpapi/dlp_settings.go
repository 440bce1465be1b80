package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlpsettings"
)

// DLPSettingsAdmin reads and replaces the caller's account's DLP
// settings: clinical terms, record number formats, threshold (package
// dlpsettings).
type DLPSettingsAdmin interface {
	Get(ctx context.Context, accountID string) (dlpsettings.Settings, error)
	Replace(ctx context.Context, actor account.Actor, st dlpsettings.Settings) (dlpsettings.Settings, error)
}

func (s *Server) dlpSettingsRoutes() {
	s.HandleScoped("GET /v1/dlp-settings", auth.ScopeMessagesRead, http.HandlerFunc(s.getDLPSettings))
	s.HandleScoped("PUT /v1/dlp-settings", auth.ScopeAdmin, http.HandlerFunc(s.putDLPSettings))
}

func (s *Server) getDLPSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.DLPSettings.Get(r.Context(), actor(r).Principal.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, st)
}

// dlpSettingsRequest is the DLPSettingsInput schema: terms and
// mrn_patterns are required (an empty list clears them), threshold is
// optional (absent or 0: the default).
type dlpSettingsRequest struct {
	Terms       *[]string `json:"terms"`
	MRNPatterns *[]struct {
		Name     string `json:"name"`
		Pattern  string `json:"pattern"`
		Anywhere bool   `json:"anywhere"`
	} `json:"mrn_patterns"`
	Threshold *float64 `json:"threshold"`
}

func (s *Server) putDLPSettings(w http.ResponseWriter, r *http.Request) {
	var req dlpSettingsRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	var missing []FieldError
	if req.Terms == nil {
		missing = append(missing, FieldError{Field: "terms", Message: "required (an empty list removes every term)"})
	}
	if req.MRNPatterns == nil {
		missing = append(missing, FieldError{Field: "mrn_patterns", Message: "required (an empty list removes every pattern)"})
	}
	if len(missing) > 0 {
		writeProblem(w, r, NewProblem(TypeValidation, "terms and mrn_patterns are required: a PUT replaces the whole settings").
			WithErrors(missing...))
		return
	}
	in := dlpsettings.Settings{Terms: *req.Terms, MRNPatterns: []dlpsettings.MRNPattern{}}
	for _, p := range *req.MRNPatterns {
		in.MRNPatterns = append(in.MRNPatterns, dlpsettings.MRNPattern{Name: p.Name, Pattern: p.Pattern, Anywhere: p.Anywhere})
	}
	if req.Threshold != nil {
		if *req.Threshold == 0 {
			writeProblem(w, r, NewProblem(TypeValidation, "threshold must be greater than 0 and at most 1 (omit it for the default)").
				WithErrors(FieldError{Field: "threshold", Message: "must be greater than 0 and at most 1"}))
			return
		}
		in.Threshold = *req.Threshold
	}
	st, err := s.opts.DLPSettings.Replace(r.Context(), actor(r), in)
	var invalid *dlpsettings.InvalidError
	switch {
	case errors.As(err, &invalid):
		writeProblem(w, r, NewProblem(TypeValidation, "the DLP settings are invalid: "+invalid.Field+" "+invalid.Message).
			WithErrors(FieldError{Field: invalid.Field, Message: invalid.Message}))
	case err != nil:
		s.writeError(w, r, err)
	default:
		s.writeJSON(w, r, http.StatusOK, st)
	}
}

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/session"
)

// SessionAdmin opens and revokes HMAC sessions.
type SessionAdmin interface {
	Open(ctx context.Context, actor account.Actor) (session.Opened, error)
	Revoke(ctx context.Context, actor account.Actor, sessionID string) error
	RevokeClientSessions(ctx context.Context, actor account.Actor, clientID string) (int64, error)
}

func (s *Server) sessionRoutes() {
	s.HandleScoped("POST /v1/sessions", auth.ScopeAuthenticated, http.HandlerFunc(s.openSession))
	s.HandleScoped("DELETE /v1/sessions/{session_id}", auth.ScopeAuthenticated, http.HandlerFunc(s.revokeSession))
	s.HandleScoped("POST /v1/api-clients/{client_id}/revoke-sessions", auth.ScopeAdmin, http.HandlerFunc(s.revokeClientSessions))
}

func (s *Server) openSession(w http.ResponseWriter, r *http.Request) {
	o, err := s.opts.Sessions.Open(r.Context(), actor(r))
	if errors.Is(err, session.ErrNotAClient) {
		writeProblem(w, r, NewProblem(TypeForbidden, "sessions are opened with an API client's own credentials (X-API-Key or Basic)"))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, struct {
		ID        string    `json:"session_id"`
		Secret    string    `json:"session_secret"`
		ExpiresAt time.Time `json:"expires_at"`
	}{o.ID, o.Secret, o.ExpiresAt})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	err := s.opts.Sessions.Revoke(r.Context(), actor(r), r.PathValue("session_id"))
	if errors.Is(err, session.ErrForbidden) {
		writeProblem(w, r, NewProblem(TypeForbidden, "only the session's client or an admin may revoke it"))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) revokeClientSessions(w http.ResponseWriter, r *http.Request) {
	n, err := s.opts.Sessions.RevokeClientSessions(r.Context(), actor(r), r.PathValue("client_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Revoked int64 `json:"revoked"`
	}{n})
}

package httpapi

import (
	"net/http"

	"github.com/sealpost/sealpost/internal/auth"
)

// whoami answers with the caller's principal: integrators use it to check
// a credential and its scopes, and it is the authenticated no-op that the
// authentication benchmarks measure.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	scheme := auth.SchemeOf(r)
	scopes := p.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		AccountID string   `json:"account_id"`
		ActorKind string   `json:"actor_kind"`
		ActorID   string   `json:"actor_id"`
		Role      string   `json:"role"`
		Scopes    []string `json:"scopes"`
		Scheme    string   `json:"scheme"`
		SessionID *string  `json:"session_id"`
	}{p.AccountID, string(p.ActorKind), p.ActorID, p.Role, scopes, scheme, nilIfEmpty(p.SessionID)})
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

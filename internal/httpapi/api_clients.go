package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
)

// ClientAdmin manages the API clients of the caller's account.
type ClientAdmin interface {
	CreateClient(ctx context.Context, actor account.Actor, spec account.ClientSpec) (account.NewClient, error)
	ListClients(ctx context.Context, actor account.Actor) ([]account.Client, error)
	RotateClient(ctx context.Context, actor account.Actor, clientID string) (account.NewClient, error)
	RevokeClient(ctx context.Context, actor account.Actor, clientID string) error
}

// apiClient is the ApiClient schema of api/openapi.yaml.
type apiClient struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Scopes     []string   `json:"scopes"`
	FirstParty bool       `json:"first_party"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// Secret is set only in the answer to create and rotate.
	Secret string `json:"client_secret,omitempty"`
}

func toAPIClient(c account.Client, secret string) apiClient {
	out := apiClient{ID: c.ID, Name: c.Name, Role: c.Role, Scopes: c.Scopes, FirstParty: c.FirstParty, CreatedAt: c.CreatedAt, Secret: secret}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if !c.RevokedAt.IsZero() {
		t := c.RevokedAt
		out.RevokedAt = &t
	}
	return out
}

type createClientRequest struct {
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Scopes     []string `json:"scopes"`
	FirstParty bool     `json:"first_party"`
}

func (s *Server) clientRoutes() {
	s.HandleScoped("GET /v1/api-clients", auth.ScopeAdmin, http.HandlerFunc(s.listClients))
	s.HandleScoped("POST /v1/api-clients", auth.ScopeAdmin, http.HandlerFunc(s.createClient))
	s.HandleScoped("POST /v1/api-clients/{client_id}/rotate", auth.ScopeAdmin, http.HandlerFunc(s.rotateClient))
	s.HandleScoped("DELETE /v1/api-clients/{client_id}", auth.ScopeAdmin, http.HandlerFunc(s.revokeClient))
}

// actor describes the authenticated caller for audit records.
func actor(r *http.Request) account.Actor {
	p, _ := auth.FromContext(r.Context())
	return account.Actor{Principal: p, SourceIP: remoteIP(r.RemoteAddr), RequestID: requestID(r.Context())}
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	clients, err := s.opts.Clients.ListClients(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, listOf(clients, func(c account.Client) apiClient { return toAPIClient(c, "") }))
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	var req createClientRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p := requireFields([2]string{"name", req.Name}, [2]string{"role", req.Role}); p != nil {
		writeProblem(w, r, p)
		return
	}
	c, err := s.opts.Clients.CreateClient(r.Context(), actor(r), account.ClientSpec{
		Name: req.Name, Role: req.Role, Scopes: req.Scopes, FirstParty: req.FirstParty})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/api-clients/"+c.ID)
	s.writeJSON(w, r, http.StatusCreated, toAPIClient(c.Client, c.Secret))
}

func (s *Server) rotateClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.opts.Clients.RotateClient(r.Context(), actor(r), r.PathValue("client_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAPIClient(c.Client, c.Secret))
}

func (s *Server) revokeClient(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Clients.RevokeClient(r.Context(), actor(r), r.PathValue("client_id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
)

// UserAdmin manages the users of the caller's account.
type UserAdmin interface {
	CreateUser(ctx context.Context, actor account.Actor, email, role string) (account.NewUser, error)
	ListUsers(ctx context.Context, actor account.Actor) ([]account.User, error)
	UpdateUser(ctx context.Context, actor account.Actor, userID string, ch account.UserChange) (account.User, error)
}

// apiUser is the User schema of api/openapi.yaml.
type apiUser struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Role       string    `json:"role"`
	Disabled   bool      `json:"disabled"`
	Locked     bool      `json:"locked"`
	MFAEnabled bool      `json:"mfa_enabled"`
	CreatedAt  time.Time `json:"created_at"`
	// Password is set only in the answer to create.
	Password string `json:"initial_password,omitempty"`
}

func toAPIUser(u account.User, password string) apiUser {
	return apiUser{ID: u.ID, Email: u.Email, Role: u.Role, Disabled: u.Disabled, Locked: u.Locked,
		MFAEnabled: u.MFAEnabled, CreatedAt: u.CreatedAt, Password: password}
}

func (s *Server) userRoutes() {
	s.HandleScoped("GET /v1/users", auth.ScopeAdmin, http.HandlerFunc(s.listUsers))
	s.HandleScoped("POST /v1/users", auth.ScopeAdmin, http.HandlerFunc(s.createUser))
	s.HandleScoped("PATCH /v1/users/{user_id}", auth.ScopeAdmin, http.HandlerFunc(s.updateUser))
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.opts.Users.ListUsers(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, listOf(users, func(u account.User) apiUser { return toAPIUser(u, "") }))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p := requireFields([2]string{"email", req.Email}, [2]string{"role", req.Role}); p != nil {
		writeProblem(w, r, p)
		return
	}
	u, err := s.opts.Users.CreateUser(r.Context(), actor(r), req.Email, req.Role)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/users/"+u.ID)
	s.writeJSON(w, r, http.StatusCreated, toAPIUser(u.User, u.Password))
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role     *string `json:"role"`
		Disabled *bool   `json:"disabled"`
		Unlock   bool    `json:"unlock"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.opts.Users.UpdateUser(r.Context(), actor(r), r.PathValue("user_id"), account.UserChange{Role: req.Role, Disabled: req.Disabled, Unlock: req.Unlock})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAPIUser(u, ""))
}

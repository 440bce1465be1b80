package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
)

// PolicyAdmin reads and replaces the caller's account's auth policy.
type PolicyAdmin interface {
	Policy(ctx context.Context, actor account.Actor) (auth.Policy, error)
	UpdatePolicy(ctx context.Context, actor account.Actor, scheme string, p auth.Policy) error
}

// authPolicy is the AuthPolicy schema of api/openapi.yaml.
type authPolicy struct {
	AllowedSchemes  []string `json:"allowed_schemes"`
	IPAllowlist     []string `json:"ip_allowlist"`
	MFARequired     bool     `json:"mfa_required"`
	TokenTTLSeconds int      `json:"token_ttl_seconds"`
	// AllowPasswordGrant is optional on PUT (default false).
	AllowPasswordGrant bool `json:"allow_password_grant"`
}

func (s *Server) policyRoutes() {
	s.HandleScoped("GET /v1/auth-policy", auth.ScopeAdmin, http.HandlerFunc(s.getPolicy))
	s.HandleScoped("PUT /v1/auth-policy", auth.ScopeAdmin, http.HandlerFunc(s.putPolicy))
}

func toAuthPolicy(p auth.Policy) authPolicy {
	out := authPolicy{AllowedSchemes: []string{}, IPAllowlist: []string{}, MFARequired: p.MFARequired,
		TokenTTLSeconds: int(p.TokenTTL / time.Second), AllowPasswordGrant: p.AllowPasswordGrant}
	for scheme, on := range map[string]bool{auth.SchemeAPIKey: p.AllowAPIKey, auth.SchemeBasic: p.AllowBasic,
		auth.SchemeHMAC: p.AllowHMAC, auth.SchemeBearer: p.AllowBearer} {
		if on {
			out.AllowedSchemes = append(out.AllowedSchemes, scheme)
		}
	}
	slices.Sort(out.AllowedSchemes)
	for _, pfx := range p.IPAllowlist {
		out.IPAllowlist = append(out.IPAllowlist, pfx.String())
	}
	return out
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.opts.Policies.Policy(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAuthPolicy(p))
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	var req authPolicy
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := auth.Policy{MFARequired: req.MFARequired, TokenTTL: time.Duration(req.TokenTTLSeconds) * time.Second,
		AllowPasswordGrant: req.AllowPasswordGrant}
	for i, scheme := range req.AllowedSchemes {
		switch scheme {
		case auth.SchemeAPIKey:
			p.AllowAPIKey = true
		case auth.SchemeBasic:
			p.AllowBasic = true
		case auth.SchemeHMAC:
			p.AllowHMAC = true
		case auth.SchemeBearer:
			p.AllowBearer = true
		default:
			writeProblem(w, r, NewProblem(TypeValidation, "allowed_schemes holds an unknown scheme").
				WithErrors(FieldError{Field: "allowed_schemes", Message: "entry " + strconv.Itoa(i+1) + " is not api_key, basic, bearer or hmac"}))
			return
		}
	}
	prefixes, err := account.ParsePrefixes(req.IPAllowlist)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p.IPAllowlist = prefixes
	if err := s.opts.Policies.UpdatePolicy(r.Context(), actor(r), auth.SchemeOf(r), p); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAuthPolicy(p))
}

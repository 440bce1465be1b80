package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/domains"
)

// DomainAdmin manages the caller's account's sending domains.
type DomainAdmin interface {
	Add(ctx context.Context, actor account.Actor, name string) (domains.Domain, error)
	List(ctx context.Context, accountID string) ([]domains.Domain, error)
	Get(ctx context.Context, accountID, name string) (domains.Domain, error)
	Verify(ctx context.Context, actor account.Actor, name string) (domains.Domain, error)
	Delete(ctx context.Context, actor account.Actor, name string) error
	Records(d domains.Domain) []domains.Record
}

// apiDomain is the SendingDomain schema of api/openapi.yaml.
type apiDomain struct {
	Domain      string      `json:"domain"`
	Status      string      `json:"status"`
	CreatedAt   time.Time   `json:"created_at"`
	VerifiedAt  *time.Time  `json:"verified_at"`
	CheckedAt   *time.Time  `json:"checked_at"`
	CheckResult string      `json:"check_result"`
	DNSRecords  []apiRecord `json:"dns_records"`
}

type apiRecord struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Value    string `json:"value"`
	Purpose  string `json:"purpose"`
	Required bool   `json:"required"`
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) toAPIDomain(d domains.Domain) apiDomain {
	out := apiDomain{Domain: d.Name, Status: d.Status, CreatedAt: d.CreatedAt, VerifiedAt: optionalTime(d.VerifiedAt),
		CheckedAt: optionalTime(d.CheckedAt), CheckResult: d.CheckResult, DNSRecords: []apiRecord{}}
	for _, r := range s.opts.Domains.Records(d) {
		out.DNSRecords = append(out.DNSRecords, apiRecord(r))
	}
	return out
}

func (s *Server) domainRoutes() {
	s.HandleScoped("GET /v1/domains", auth.ScopeAdmin, http.HandlerFunc(s.listDomains))
	s.HandleScoped("POST /v1/domains", auth.ScopeAdmin, http.HandlerFunc(s.addDomain))
	s.HandleScoped("GET /v1/domains/{domain}", auth.ScopeAdmin, http.HandlerFunc(s.getDomain))
	s.HandleScoped("POST /v1/domains/{domain}/verify", auth.ScopeAdmin, http.HandlerFunc(s.verifyDomain))
	s.HandleScoped("DELETE /v1/domains/{domain}", auth.ScopeAdmin, http.HandlerFunc(s.deleteDomain))
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	list, err := s.opts.Domains.List(r.Context(), p.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, listOf(list, s.toAPIDomain))
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Domain string `json:"domain"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p := requireFields([2]string{"domain", q.Domain}); p != nil {
		writeProblem(w, r, p)
		return
	}
	d, err := s.opts.Domains.Add(r.Context(), actor(r), q.Domain)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/domains/"+d.Name)
	s.writeJSON(w, r, http.StatusCreated, s.toAPIDomain(d))
}

func (s *Server) getDomain(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	d, err := s.opts.Domains.Get(r.Context(), p.AccountID, r.PathValue("domain"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.toAPIDomain(d))
}

func (s *Server) verifyDomain(w http.ResponseWriter, r *http.Request) {
	d, err := s.opts.Domains.Verify(r.Context(), actor(r), r.PathValue("domain"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.toAPIDomain(d))
}

func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Domains.Delete(r.Context(), actor(r), r.PathValue("domain")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

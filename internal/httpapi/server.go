// Package httpapi is Sealpost's HTTP layer on net/http: routing (Go 1.22
// patterns), the middleware every request passes (request id, panic
// recovery, access log, metrics, security headers, body limit),
// authentication and scope checks through a hook, RFC 9457 problem
// responses, strict JSON decoding, the health, metrics and documentation
// endpoints, and the /v1 handlers that api/openapi.yaml describes. It owns
// no business rules and no SQL: handlers decode, validate and authorize,
// then call the domain through small interfaces.
package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sealpost/sealpost/internal/auth"
)

// DefaultMaxBodyBytes caps request bodies when Options.MaxBodyBytes is
// zero.
const DefaultMaxBodyBytes int64 = 10 << 20

// Options configure a Server. The zero value serves health, docs and
// metrics, and answers 401 on every authenticated route.
type Options struct {
	// Logger receives the access log and server-side errors, never
	// bodies, query strings or credentials. Nil discards them.
	Logger *slog.Logger

	// Registerer receives the HTTP metrics. Nil means a private registry,
	// which is then also the default Gatherer.
	Registerer prometheus.Registerer

	// Gatherer is exposed on GET /metrics. Nil means Registerer when it is
	// also a Gatherer (a *prometheus.Registry is), else the private
	// registry; when neither exists /metrics is not served.
	Gatherer prometheus.Gatherer

	// MaxBodyBytes caps every request body; zero or less means
	// DefaultMaxBodyBytes (10 MiB). Larger bodies get 413.
	MaxBodyBytes int64

	// TLS reports that the server is reached over TLS, which turns on
	// Strict-Transport-Security. False sends no HSTS header.
	TLS bool

	// Authenticate resolves the request's credentials to a principal. It
	// returns an error wrapping auth.ErrNoCredentials or
	// auth.ErrBadCredentials to refuse the caller (401); any other error
	// is a server fault (500). Nil refuses every caller.
	Authenticate func(*http.Request) (auth.Principal, error)

	// Audit serves GET /v1/audit-events. Nil leaves the route out (404).
	Audit AuditReader

	// Refused is told of every refused credential and denied scope, for
	// the audit log. Nil records nothing.
	Refused RefusalRecorder

	// Clients serves /v1/api-clients (create, list, rotate, revoke). Nil
	// leaves those routes out.
	Clients ClientAdmin

	// Sessions serves /v1/sessions and client session revocation. Nil
	// leaves those routes out.
	Sessions SessionAdmin

	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client. Empty trusts none (the TCP peer is the client).
	TrustedProxies []netip.Prefix

	// Throttle refuses (429) source addresses with too many failed
	// authentications. Nil throttles nothing.
	Throttle *auth.Throttle

	// OAuth serves /oauth2/token, /oauth2/revoke and /oauth2/introspect.
	// Nil leaves them out.
	OAuth OAuthServer

	// Users serves /v1/users. Nil leaves it out.
	Users UserAdmin

	// Policies serves /v1/auth-policy. Nil leaves it out.
	Policies PolicyAdmin

	// Messages serves /v1/messages and /v1/suppressions. Nil leaves them
	// out.
	Messages MessageService

	// Domains serves /v1/domains. Nil leaves it out.
	Domains DomainAdmin

	// Webhooks serves /v1/webhooks and their delivery log. Nil leaves it
	// out.
	Webhooks WebhookAdmin

	// TrackingSettings serves /v1/tracking-settings. Nil leaves it out.
	TrackingSettings TrackingSettingsAdmin

	// Retention serves /v1/retention-policy. Nil leaves it out.
	Retention RetentionAdmin

	// SecureLine serves /v1/secureline/preflight and
	// /v1/secureline/settings. Nil leaves them out.
	SecureLine SecureLineService

	// Templates serves /v1/templates. Nil leaves it out.
	Templates TemplateService

	// DLP serves /v1/dlp-policy and its dry run. Nil leaves them out.
	DLP DLPPolicyAdmin

	// DLPSettings serves /v1/dlp-settings. Nil leaves it out.
	DLPSettings DLPSettingsAdmin

	// Quarantine serves /v1/quarantine (list, release, reject). Nil
	// leaves it out.
	Quarantine QuarantineAdmin

	// Portal serves /v1/portal-messages and /v1/portal-settings. Nil
	// leaves them out.
	Portal PortalService

	// Keys serves /v1/keys (recipient PGP keys and S/MIME certificates,
	// sender S/MIME certificates). Nil leaves them out.
	Keys KeyService

	// ReadyChecks are run by GET /readyz, concurrently, by name. Nil or
	// empty means the node is always ready.
	ReadyChecks map[string]func(context.Context) error

	// ReadyCheckTimeout bounds each readiness check; zero means
	// DefaultReadyCheckTimeout.
	ReadyCheckTimeout time.Duration
}

// OAuthServer is the OAuth 2.0 authorization server's endpoints; they
// answer in RFC 6749 §5 form, not problem+json.
type OAuthServer interface {
	Token(w http.ResponseWriter, r *http.Request)
	Revoke(w http.ResponseWriter, r *http.Request)
	Introspect(w http.ResponseWriter, r *http.Request)
}

// Server is the HTTP API. Build it with New; add routes with Handle and
// HandleScoped; serve Handler. It is safe for concurrent use.
type Server struct {
	opts         Options
	log          *slog.Logger
	mux          *http.ServeMux
	metrics      *metrics
	tls          bool
	readyTimeout time.Duration
	scoped       map[string]string // pattern -> scope
	handler      http.Handler
}

// New builds a Server with its built-in routes:
//
//	GET /healthz, GET /readyz       probes, unauthenticated
//	GET /metrics                    Prometheus exposition
//	GET /openapi.yaml, /openapi.json the contract
//	GET /docs                       interactive API reference
//	GET /v1/audit-events            scope audit:read (when Options.Audit is set)
//
// New panics only on programming errors: metrics that clash with
// differently shaped ones already in Registerer, or embedded files that do
// not load (which the package tests rule out).
func New(opts Options) *Server {
	s := &Server{
		opts:         opts,
		log:          opts.Logger,
		mux:          http.NewServeMux(),
		scoped:       map[string]string{},
		tls:          opts.TLS,
		readyTimeout: opts.ReadyCheckTimeout,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if s.readyTimeout <= 0 {
		s.readyTimeout = DefaultReadyCheckTimeout
	}
	maxBody := opts.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}

	reg, gatherer := opts.Registerer, opts.Gatherer
	if reg == nil {
		private := prometheus.NewRegistry()
		reg = private
		if gatherer == nil {
			gatherer = private
		}
	}
	if g, ok := reg.(prometheus.Gatherer); ok && gatherer == nil {
		gatherer = g
	}
	s.metrics = newMetrics(reg)

	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	if err := s.docsRoutes(); err != nil {
		panic(fmt.Sprintf("httpapi: %v", err))
	}
	s.HandleScoped("GET /v1/whoami", auth.ScopeAuthenticated, http.HandlerFunc(s.whoami))
	if opts.Audit != nil {
		s.HandleScoped("GET /v1/audit-events", auth.ScopeAuditRead, http.HandlerFunc(s.listAuditEvents))
	}
	if opts.Clients != nil {
		s.clientRoutes()
	}
	if opts.Sessions != nil {
		s.sessionRoutes()
	}
	if opts.Policies != nil {
		s.policyRoutes()
	}
	if opts.Users != nil {
		s.userRoutes()
	}
	if opts.Messages != nil {
		s.messageRoutes()
	}
	if opts.Domains != nil {
		s.domainRoutes()
	}
	if opts.Webhooks != nil {
		s.webhookRoutes()
	}
	if opts.TrackingSettings != nil {
		s.trackingSettingsRoutes()
	}
	if opts.Retention != nil {
		s.retentionRoutes()
	}
	if opts.SecureLine != nil {
		s.securelineRoutes()
	}
	if opts.Templates != nil {
		s.templateRoutes()
	}
	if opts.DLP != nil {
		s.dlpPolicyRoutes()
	}
	if opts.DLPSettings != nil {
		s.dlpSettingsRoutes()
	}
	if opts.Quarantine != nil {
		s.quarantineRoutes()
	}
	if opts.Portal != nil {
		s.portalRoutes()
	}
	if opts.Keys != nil {
		s.keyRoutes()
	}
	if opts.OAuth != nil {
		s.Handle("POST /oauth2/token", http.HandlerFunc(opts.OAuth.Token))
		s.Handle("POST /oauth2/revoke", http.HandlerFunc(opts.OAuth.Revoke))
		s.Handle("POST /oauth2/introspect", http.HandlerFunc(opts.OAuth.Introspect))
	}

	// Outermost first. begin must wrap everything so that the access log
	// and metrics see every response, including recovered panics.
	var h http.Handler = http.HandlerFunc(s.route)
	h = s.limitBody(maxBody, h)
	h = s.refuseURLCredentials(h)
	h = s.recoverPanics(h)
	h = s.secureHeaders(h)
	s.handler = s.begin(h)
	return s
}

// Handler returns the server's root handler, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// Handle registers handler for a ServeMux pattern such as
// "POST /oauth2/token", behind the common middleware but without
// authentication. It panics, as ServeMux does, when the pattern is invalid
// or conflicts with a registered one. Routes under /v1 should use
// HandleScoped.
func (s *Server) Handle(pattern string, handler http.Handler) {
	if _, path, _ := strings.Cut(pattern, " "); strings.HasPrefix(path, "/v1/") || strings.HasPrefix(pattern, "/v1/") {
		// Deny by default: nothing under /v1 is served without a scope.
		panic(fmt.Sprintf("httpapi: %s is under /v1 and must be registered with HandleScoped", pattern))
	}
	s.mux.Handle(pattern, handler)
}

// HandleScoped registers handler for pattern behind authentication: the
// request is served only for a principal holding scope (or admin), which
// handler finds with auth.FromContext. The operation in api/openapi.yaml
// must declare the same scope as x-sealpost-scope.
func (s *Server) HandleScoped(pattern, scope string, handler http.Handler) {
	if scope == "" {
		panic(fmt.Sprintf("httpapi: %s registered without a scope", pattern))
	}
	s.mux.Handle(pattern, s.requireScope(scope, handler))
	s.scoped[pattern] = scope
}

// ScopedRoutes returns every pattern registered with HandleScoped and the
// scope it requires, so tests can hold the routes to the contract.
func (s *Server) ScopedRoutes() map[string]string {
	return maps.Clone(s.scoped)
}

// route dispatches to the mux, recording the matched pattern for the
// access log and metrics. Requests no pattern matches get the mux's own
// 404 or 405 (with its Allow header) rewritten as problems.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	st := stateFrom(r.Context())
	// ServeMux sets r.Pattern before it calls the handler, so this also
	// records the route of a handler that panics.
	defer func() { st.pattern = r.Pattern }()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		w = &fallbackWriter{ResponseWriter: w, r: r}
	}
	s.mux.ServeHTTP(w, r)
}

// fallbackWriter stands between ServeMux's built-in not-found and
// method-not-allowed replies and the client, replacing their plain-text
// body with a problem. Other replies (redirects to a cleaned path) pass.
type fallbackWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (f *fallbackWriter) WriteHeader(code int) {
	switch code {
	case http.StatusNotFound:
		f.replaced = true
		writeProblem(f.ResponseWriter, f.r, NewProblem(TypeNotFound, "no resource at this path"))
	case http.StatusMethodNotAllowed:
		f.replaced = true
		allow := f.Header().Get("Allow")
		writeProblem(f.ResponseWriter, f.r, NewProblem(TypeMethodNotAllowed,
			"this resource allows "+strings.ReplaceAll(allow, ",", " and")))
	default:
		f.ResponseWriter.WriteHeader(code)
	}
}

func (f *fallbackWriter) Write(b []byte) (int, error) {
	if f.replaced {
		return len(b), nil
	}
	return f.ResponseWriter.Write(b)
}

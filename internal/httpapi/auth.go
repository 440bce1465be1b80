package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/sealpost/sealpost/internal/auth"
)

// authChallenge is the WWW-Authenticate value of every 401
// (RFC 9110 §11.6.1): HTTP Basic (RFC 7617) and bearer tokens (RFC 6750).
const authChallenge = `Basic realm="sealpost", Bearer`

// errNoAuthenticator stands in for a missing Options.Authenticate: with
// no way to check credentials, no caller is authenticated.
var errNoAuthenticator = errors.New("httpapi: no authenticator configured")

// requireScope authenticates the request and serves it with next only if
// the principal holds scope, with the principal in the context
// (auth.FromContext). A refused or missing credential is 401, a missing
// scope 403. An Authenticate error that is neither auth.ErrNoCredentials
// nor auth.ErrBadCredentials is a server fault (500): telling a client its
// valid credential is wrong because a database is down would make it
// discard the credential.
func (s *Server) requireScope(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		source := remoteIP(r.RemoteAddr)
		if s.opts.Throttle != nil {
			if wait, blocked := s.opts.Throttle.Blocked(source); blocked {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
				writeProblem(w, r, NewProblem(TypeRateLimited, "too many failed authentications from this address; retry later"))
				return
			}
		}
		p, err := s.authenticate(r)
		switch {
		case errors.Is(err, auth.ErrBadCredentials):
			if s.opts.Throttle != nil {
				s.opts.Throttle.Fail(source)
			}
			if s.opts.Refused != nil {
				s.opts.Refused.AuthenticationFailed(r, err)
			}
			writeProblem(w, r, NewProblem(TypeUnauthenticated, "a valid credential is required"))
			return
		case errors.Is(err, auth.ErrNoCredentials), errors.Is(err, errNoAuthenticator):
			writeProblem(w, r, NewProblem(TypeUnauthenticated, "a valid credential is required"))
			return
		case err != nil:
			s.writeError(w, r, err)
			return
		}
		if p.AccountID == "" || !p.Has(scope) {
			if s.opts.Refused != nil {
				s.opts.Refused.PermissionDenied(r, p, scope)
			}
			writeProblem(w, r, NewProblem(TypeForbidden, "this credential lacks the scope "+scope))
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// RefusalRecorder is told of refused requests, to audit them. Its methods
// run on the request path and must not fail the request.
type RefusalRecorder interface {
	// AuthenticationFailed: a credential was presented and refused.
	AuthenticationFailed(r *http.Request, err error)
	// PermissionDenied: an authenticated principal lacked scope.
	PermissionDenied(r *http.Request, p auth.Principal, scope string)
}

func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	if s.opts.Authenticate == nil {
		return auth.Principal{}, errNoAuthenticator
	}
	return s.opts.Authenticate(r)
}

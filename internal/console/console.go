// Package console is the web console's sign-in and account-security
// pages: email and password, then a TOTP code or recovery code (RFC 6238;
// package mfa), TOTP enrolment by QR code with recovery codes, forced
// enrolment when the account's policy requires MFA, the list of one's
// signed-in sessions with sign-out of one or all. Sessions live in a
// Secure, HttpOnly, SameSite=Strict __Host- cookie holding a random token
// whose hash is stored, end after an idle timeout and an absolute one, and
// are re-issued at every step up (no session fixation). Every form that
// changes something carries a synchronizer CSRF token, and cross-origin
// unsafe requests are refused outright. The same session authenticates
// the /v1 API (Verify), with the CSRF token in X-CSRF-Token.
package console

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/login"
	"github.com/sealpost/sealpost/internal/mfa"
	"github.com/sealpost/sealpost/web"
)

// CookieName is the session cookie. The __Host- prefix makes browsers
// insist on Secure, Path=/ and no Domain (RFC 6265bis §4.1.3.2).
const CookieName = "__Host-sealpost-console"

// AccountNamer names an account for the pages.
type AccountNamer interface {
	AccountName(ctx context.Context, accountID string) (string, error)
}

// Deps are what the console works with.
type Deps struct {
	Sessions *Sessions
	Logins   *login.Service
	MFA      *mfa.Manager
	Policies auth.PolicyLookup
	Accounts AccountNamer
	Audit    *audit.Log
	// Throttle counts failed sign-ins per source address (shared with
	// the API). Nil throttles nothing.
	Throttle *auth.Throttle
	Logger   *slog.Logger
}

// Console serves the pages under /console/.
type Console struct {
	Deps
	pages map[string]*template.Template
	css   []byte
}

// New parses the embedded templates.
func New(d Deps) (*Console, error) {
	files := web.Console()
	c := &Console{Deps: d, pages: map[string]*template.Template{}}
	for _, page := range []string{"login", "mfa", "enrol", "recovery", "home", "sessions"} {
		t, err := template.ParseFS(files, "layout.html", page+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", page, err)
		}
		c.pages[page] = t
	}
	css, err := fs.ReadFile(files, "console.css")
	if err != nil {
		return nil, err
	}
	c.css = css
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Routes returns the console's patterns and handlers, for the HTTP layer
// to mount behind its middleware. Unsafe requests from other origins are
// refused (Sec-Fetch-Site / Origin) before any handler runs.
func (c *Console) Routes() map[string]http.Handler {
	guard := http.NewCrossOriginProtection()
	wrap := func(f http.HandlerFunc) http.Handler { return guard.Handler(noStore(f)) }
	return map[string]http.Handler{
		"GET /console":                      http.RedirectHandler("/console/", http.StatusSeeOther),
		"GET /console/{$}":                  wrap(c.home),
		"GET /console/login":                wrap(c.loginPage),
		"POST /console/login":               wrap(c.loginSubmit),
		"GET /console/login/mfa":            wrap(c.mfaPage),
		"POST /console/login/mfa":           wrap(c.mfaSubmit),
		"GET /console/mfa":                  wrap(c.enrolPage),
		"POST /console/mfa":                 wrap(c.enrolSubmit),
		"GET /console/sessions":             wrap(c.sessionsPage),
		"POST /console/sessions/revoke":     wrap(c.revokeOne),
		"POST /console/sessions/revoke-all": wrap(c.revokeAll),
		"POST /console/logout":              wrap(c.logout),
		"GET /console/static/console.css":   http.HandlerFunc(c.stylesheet),
	}
}

func noStore(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next(w, r)
	}
}

func (c *Console) stylesheet(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(c.css)
}

// view is what every page template sees.
type view struct {
	Title, Error, Notice, CSRF string
	Session                    bool
	Email, Role, AccountName   string
	MFAEnabled, Forced         bool
	QR                         template.URL
	Secret                     string
	Codes                      []string
	Sessions                   []Session
	CurrentID                  string
}

func (c *Console) render(w http.ResponseWriter, status int, page string, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[page].ExecuteTemplate(w, "layout", v); err != nil {
		c.Logger.Error("render console page", "page", page, "error", err)
	}
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.Logger.ErrorContext(r.Context(), "console", "path", r.URL.Path, "error", err)
	http.Error(w, "Something went wrong; try again.", http.StatusInternalServerError)
}

// session returns the request's live session, or ErrNoSession.
func (c *Console) session(r *http.Request) (Session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return Session{}, ErrNoSession
	}
	return c.Sessions.Lookup(r.Context(), ck.Value)
}

// require returns the request's session when it is in stage; otherwise
// it redirects to where the visitor belongs and returns false.
func (c *Console) require(w http.ResponseWriter, r *http.Request, stage string) (Session, bool) {
	sess, err := c.session(r)
	switch {
	case errors.Is(err, ErrNoSession):
		c.clearCookie(w)
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return Session{}, false
	case err != nil:
		c.fail(w, r, err)
		return Session{}, false
	case sess.Stage != stage:
		http.Redirect(w, r, stagePage(sess.Stage), http.StatusSeeOther)
		return Session{}, false
	}
	return sess, true
}

// requirePost is require plus the CSRF check of a form post.
func (c *Console) requirePost(w http.ResponseWriter, r *http.Request, stage string) (Session, bool) {
	sess, ok := c.require(w, r, stage)
	if !ok {
		return Session{}, false
	}
	if !sess.CheckCSRF(r.PostFormValue("csrf")) {
		http.Error(w, "This form has expired; go back, reload and try again.", http.StatusForbidden)
		return Session{}, false
	}
	return sess, true
}

func stagePage(stage string) string {
	switch stage {
	case StageMFA:
		return "/console/login/mfa"
	case StageEnrol:
		return "/console/mfa"
	}
	return "/console/"
}

func (c *Console) setCookie(w http.ResponseWriter, sess Session) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sess.token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: sess.ExpiresAt})
}

func (c *Console) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

func sourceIP(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().String()
	}
	return r.RemoteAddr
}

func requestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

// throttled answers 429 when the address failed too often.
func (c *Console) throttled(w http.ResponseWriter, r *http.Request, page string, v view) bool {
	if c.Throttle == nil {
		return false
	}
	wait, blocked := c.Throttle.Blocked(sourceIP(r))
	if !blocked {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	v.Error = fmt.Sprintf("Too many failed attempts from your address. Try again in %d minutes.", int(wait.Minutes())+1)
	c.render(w, http.StatusTooManyRequests, page, v)
	return true
}

func (c *Console) countFailure(r *http.Request) {
	if c.Throttle != nil {
		c.Throttle.Fail(sourceIP(r))
	}
}

// --- sign-in ---------------------------------------------------------

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if sess, err := c.session(r); err == nil {
		http.Redirect(w, r, stagePage(sess.Stage), http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", view{Title: "Sign in"})
}

// badLogin is the one answer to every refused sign-in.
const badLogin = "Invalid email or password."

func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := view{Title: "Sign in"}
	if c.throttled(w, r, "login", v) {
		return
	}
	u, err := c.Logins.Password(ctx, login.Attempt{Email: r.PostFormValue("email"), Password: r.PostFormValue("password"),
		Channel: "console", SourceIP: sourceIP(r), RequestID: requestID(w)})
	if errors.Is(err, login.ErrFailed) {
		c.countFailure(r)
		v.Error = badLogin
		c.render(w, http.StatusUnauthorized, "login", v)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	policy, err := c.Policies.AuthPolicy(ctx, u.AccountID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	addr, _ := netip.ParseAddr(sourceIP(r))
	if ok, why := policy.Allows(auth.SchemeConsole, addr); !ok {
		c.audit(ctx, w, r, u.AccountID, u.ID, "login.failed", audit.OutcomeDenied, map[string]string{"reason": why, "channel": "console"})
		v.Error = badLogin
		c.render(w, http.StatusUnauthorized, "login", v)
		return
	}
	stage := StageFull
	switch {
	case u.MFAEnrolled:
		stage = StageMFA
	case policy.MFARequired:
		stage = StageEnrol
	}
	if stage == StageFull {
		if err := c.Logins.Succeeded(ctx, u, "console", sourceIP(r), requestID(w)); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	sess, err := c.Sessions.Create(ctx, u.AccountID, u.ID, stage, sourceIP(r), r.UserAgent())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.setCookie(w, sess)
	http.Redirect(w, r, stagePage(stage), http.StatusSeeOther)
}

func (c *Console) mfaPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.require(w, r, StageMFA)
	if !ok {
		return
	}
	c.render(w, http.StatusOK, "mfa", view{Title: "Two-factor authentication", CSRF: sess.CSRFToken()})
}

func (c *Console) mfaSubmit(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.requirePost(w, r, StageMFA)
	if !ok {
		return
	}
	ctx := r.Context()
	v := view{Title: "Two-factor authentication", CSRF: sess.CSRFToken()}
	if c.throttled(w, r, "mfa", v) {
		return
	}
	u := login.User{ID: sess.UserID, AccountID: sess.AccountID, Email: sess.Email, Role: sess.Role, MFAEnrolled: true}
	err := c.Logins.SecondFactor(ctx, u, r.PostFormValue("code"), "console", sourceIP(r), requestID(w))
	if errors.Is(err, login.ErrBadCode) {
		c.countFailure(r)
		v.Error = "That code is not valid. Codes work once: wait for the next one."
		c.render(w, http.StatusUnauthorized, "mfa", v)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.Logins.Succeeded(ctx, u, "console", sourceIP(r), requestID(w)); err != nil {
		c.fail(w, r, err)
		return
	}
	c.stepUp(w, r, sess, "/console/")
}

// stepUp replaces a pending session with a full one under a new token
// and redirects to next.
func (c *Console) stepUp(w http.ResponseWriter, r *http.Request, pending Session, next string) {
	ctx := r.Context()
	full, err := c.Sessions.Create(ctx, pending.AccountID, pending.UserID, StageFull, sourceIP(r), r.UserAgent())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := c.Sessions.Revoke(ctx, pending.AccountID, pending.UserID, pending.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.setCookie(w, full)
	if next != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

// --- MFA enrolment -----------------------------------------------------

// enrolSession accepts a full session or one that must enrol.
func (c *Console) enrolSession(w http.ResponseWriter, r *http.Request, post bool) (Session, bool) {
	sess, err := c.session(r)
	if err == nil && sess.Stage == StageEnrol {
		if post && !sess.CheckCSRF(r.PostFormValue("csrf")) {
			http.Error(w, "This form has expired; go back, reload and try again.", http.StatusForbidden)
			return Session{}, false
		}
		return sess, true
	}
	if post {
		return c.requirePost(w, r, StageFull)
	}
	return c.require(w, r, StageFull)
}

func (c *Console) enrolPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.enrolSession(w, r, false)
	if !ok {
		return
	}
	v := view{Title: "Two-factor authentication", CSRF: sess.CSRFToken(), Session: sess.Stage == StageFull,
		Email: sess.Email, Forced: sess.Stage == StageEnrol}
	en, err := c.MFA.Enrol(r.Context(), sess.AccountID, sess.UserID, sess.Email)
	if errors.Is(err, mfa.ErrAlreadyReady) {
		v.MFAEnabled = true
		c.render(w, http.StatusOK, "enrol", v)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRPNG))
	v.Secret = en.Secret
	c.render(w, http.StatusOK, "enrol", v)
}

func (c *Console) enrolSubmit(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.enrolSession(w, r, true)
	if !ok {
		return
	}
	ctx := r.Context()
	codes, err := c.MFA.Confirm(ctx, sess.AccountID, sess.UserID, r.PostFormValue("code"))
	if errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfa.ErrNotEnrolled) {
		c.countFailure(r)
		v := view{Title: "Two-factor authentication", CSRF: sess.CSRFToken(), Session: sess.Stage == StageFull,
			Email: sess.Email, Forced: sess.Stage == StageEnrol,
			Error: "That code is not valid. Scan the new code below and try again."}
		if en, eerr := c.MFA.Enrol(ctx, sess.AccountID, sess.UserID, sess.Email); eerr == nil {
			v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRPNG))
			v.Secret = en.Secret
		}
		c.render(w, http.StatusUnprocessableEntity, "enrol", v)
		return
	}
	if errors.Is(err, mfa.ErrAlreadyReady) {
		http.Redirect(w, r, "/console/mfa", http.StatusSeeOther)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(ctx, w, r, sess.AccountID, sess.UserID, "mfa.enrolled", audit.OutcomeSuccess, map[string]string{"method": "totp"})
	if sess.Stage == StageEnrol {
		u := login.User{ID: sess.UserID, AccountID: sess.AccountID, MFAEnrolled: true}
		if err := c.Logins.Succeeded(ctx, u, "console", sourceIP(r), requestID(w)); err != nil {
			c.fail(w, r, err)
			return
		}
		c.stepUp(w, r, sess, "")
	}
	// A fresh session token means a fresh CSRF token; the recovery page
	// has no form, so the old one is not needed.
	c.render(w, http.StatusOK, "recovery", view{Title: "Recovery codes", Session: true, Codes: codes})
}

// --- home, sessions, sign-out --------------------------------------------

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.require(w, r, StageFull)
	if !ok {
		return
	}
	name, err := c.Accounts.AccountName(r.Context(), sess.AccountID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	enabled, err := c.MFA.Enabled(r.Context(), sess.AccountID, sess.UserID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "home", view{Title: "Overview", Session: true, CSRF: sess.CSRFToken(), Email: sess.Email,
		Role: sess.Role, AccountName: name, MFAEnabled: enabled})
}

func (c *Console) sessionsPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.require(w, r, StageFull)
	if !ok {
		return
	}
	list, err := c.Sessions.List(r.Context(), sess.AccountID, sess.UserID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := view{Title: "Sessions", Session: true, CSRF: sess.CSRFToken(), Sessions: list, CurrentID: sess.ID}
	if r.URL.Query().Get("revoked") == "1" {
		v.Notice = "The session was signed out."
	}
	c.render(w, http.StatusOK, "sessions", v)
}

func (c *Console) revokeOne(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.requirePost(w, r, StageFull)
	if !ok {
		return
	}
	id := r.PostFormValue("id")
	done, err := c.Sessions.Revoke(r.Context(), sess.AccountID, sess.UserID, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if done {
		c.audit(r.Context(), w, r, sess.AccountID, sess.UserID, "console.session_revoked", audit.OutcomeSuccess,
			map[string]string{"session": id})
	}
	if id == sess.ID {
		c.clearCookie(w)
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/console/sessions?revoked=1", http.StatusSeeOther)
}

func (c *Console) revokeAll(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.requirePost(w, r, StageFull)
	if !ok {
		return
	}
	n, err := c.Sessions.RevokeAll(r.Context(), sess.AccountID, sess.UserID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r.Context(), w, r, sess.AccountID, sess.UserID, "console.sessions_revoked", audit.OutcomeSuccess,
		map[string]string{"count": strconv.FormatInt(n, 10)})
	c.clearCookie(w)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	sess, err := c.session(r)
	if err != nil {
		c.clearCookie(w)
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	if !sess.CheckCSRF(r.PostFormValue("csrf")) {
		http.Error(w, "This form has expired; go back, reload and try again.", http.StatusForbidden)
		return
	}
	if _, err := c.Sessions.Revoke(r.Context(), sess.AccountID, sess.UserID, sess.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r.Context(), w, r, sess.AccountID, sess.UserID, "console.logout", audit.OutcomeSuccess, nil)
	c.clearCookie(w)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

func (c *Console) audit(ctx context.Context, w http.ResponseWriter, r *http.Request, accountID, userID, action, outcome string, details map[string]string) {
	_, err := c.Audit.Append(ctx, audit.Event{AccountID: accountID, ActorKind: string(auth.ActorUser), ActorID: userID,
		Action: action, Target: "user/" + userID, Outcome: outcome, SourceIP: sourceIP(r), RequestID: requestID(w), Details: details})
	if err != nil {
		c.Logger.ErrorContext(ctx, "audit console event", "action", action, "error", err)
	}
}

// --- the API --------------------------------------------------------------

// Verify authenticates an API request by its console session cookie
// (auth.Authenticator's Console hook). Requests that can change something
// must carry the session's CSRF token in X-CSRF-Token.
func (c *Console) Verify(r *http.Request) (auth.Principal, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return auth.Principal{}, auth.ErrNoCredentials
	}
	sess, err := c.Sessions.Lookup(r.Context(), ck.Value)
	if errors.Is(err, ErrNoSession) || (err == nil && sess.Stage != StageFull) {
		return auth.Principal{}, fmt.Errorf("%w: no console session", auth.ErrBadCredentials)
	}
	if err != nil {
		return auth.Principal{}, err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !sess.CheckCSRF(r.Header.Get("X-CSRF-Token")) {
			return auth.Principal{}, fmt.Errorf("%w: missing or wrong X-CSRF-Token", auth.ErrBadCredentials)
		}
	}
	return auth.Principal{AccountID: sess.AccountID, ActorKind: auth.ActorUser, ActorID: sess.UserID, Role: sess.Role,
		Scopes: sess.Scopes}, nil
}

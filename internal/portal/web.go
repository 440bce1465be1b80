package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/web"
)

// Cookie names. The __Host- prefix makes browsers insist on Secure,
// Path=/ and no Domain (RFC 6265bis §4.1.3.2).
const (
	CookieName     = "__Host-sealpost-portal"
	csrfCookieName = "__Host-sealpost-portal-csrf"
)

// pagePolicy is the Content-Security-Policy of portal pages: no script
// at all, styles only from our stylesheet and the page's own nonce'd
// brand colour, images only ours or data: (the logo), frames only ours
// (the sandboxed body), and no one may frame the portal.
const pagePolicy = "default-src 'none'; style-src 'self' 'nonce-%s'; img-src 'self' data:; frame-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// bodyPolicy sandboxes the sender's HTML (CSP sandbox without
// allow-scripts: scripts never run, forms never submit, the document has
// an opaque origin); it loads nothing from anywhere (no tracking pixels,
// no remote fonts), and only the portal page may frame it.
const bodyPolicy = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'self'"

// Web serves the portal's pages under /p/.
type Web struct {
	svc   *Service
	pages map[string]*template.Template
	css   []byte
}

// NewWeb parses the embedded templates.
func NewWeb(s *Service) (*Web, error) {
	files := web.Portal()
	w := &Web{svc: s, pages: map[string]*template.Template{}}
	for _, page := range []string{"notice", "start", "verify", "message"} {
		t, err := template.ParseFS(files, "layout.html", page+".html")
		if err != nil {
			return nil, fmt.Errorf("portal template %s: %w", page, err)
		}
		w.pages[page] = t
	}
	css, err := fs.ReadFile(files, "portal.css")
	if err != nil {
		return nil, err
	}
	w.css = css
	return w, nil
}

// Routes returns the portal's patterns and handlers for the HTTP layer to
// mount. Unsafe requests from other origins are refused (Sec-Fetch-Site /
// Origin) before any handler runs; forms also carry a CSRF token.
func (wb *Web) Routes() map[string]http.Handler {
	guard := http.NewCrossOriginProtection()
	wrap := func(f http.HandlerFunc) http.Handler { return guard.Handler(noStore(f)) }
	return map[string]http.Handler{
		"GET /p/{token}":                 wrap(wb.landing),
		"POST /p/{token}/code":           wrap(wb.requestCode),
		"GET /p/{token}/verify":          wrap(wb.verifyPage),
		"POST /p/{token}/verify":         wrap(wb.verifySubmit),
		"GET /p/{token}/body":            wrap(wb.body),
		"GET /p/{token}/attachments/{n}": wrap(wb.download),
		"POST /p/{token}/reply":          wrap(wb.reply),
		"POST /p/{token}/logout":         wrap(wb.logout),
		"GET /p/static/portal.css":       http.HandlerFunc(wb.stylesheet),
	}
}

func noStore(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next(w, r)
	}
}

func (wb *Web) stylesheet(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(wb.css)
}

// view is what every page template sees.
type view struct {
	Title, Error, Notice, CSRF, Nonce string
	Base                              string // "/p/<token>"
	Brand                             brand
	SignedIn                          bool
	IdleSeconds                       int
	Explanation                       string
	Masked                            string
	CodePending                       bool
	Digits, CodeMinutes               int
	ChallengeKind, ChallengeLabel     string
	ChallengeHint                     string
	From, To, Expires, ExpiresISO     string
	HasHTML                           bool
	Text                              string
	Attachments                       []attachmentView
}

type attachmentView struct {
	Index      int
	Name, Size string
}

func (wb *Web) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	v.Nonce = base64.RawStdEncoding.EncodeToString(nonce[:])
	if v.Brand.Name == "" {
		v.Brand = brand{Name: "Secure message", Color: DefaultColor}
	}
	w.Header().Set("Content-Security-Policy", fmt.Sprintf(pagePolicy, v.Nonce))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := wb.pages[page].ExecuteTemplate(w, "layout", v); err != nil {
		wb.svc.opts.Logger.ErrorContext(r.Context(), "render portal page", "page", page, "error", err)
	}
}

// fail answers an unexpected error without details (they go to the log,
// which never gets tokens or content).
func (wb *Web) fail(w http.ResponseWriter, r *http.Request, err error) {
	wb.svc.opts.Logger.ErrorContext(r.Context(), "portal", "route", r.Pattern, "error", err)
	wb.render(w, r, http.StatusInternalServerError, "notice", view{Title: "Something went wrong",
		Explanation: "We could not complete that. Please try again in a moment."})
}

// refuse renders the page of a link that does not open, or reports
// false when err is not such a case.
func (wb *Web) refuse(w http.ResponseWriter, r *http.Request, l Link, err error) bool {
	v := view{}
	if l.AccountID != "" {
		v.Brand, _ = wb.svc.branding(r.Context(), l.AccountID)
	}
	switch {
	case errors.Is(err, ErrLinkInvalid):
		v.Title, v.Explanation = "This link is not valid", "Check that you opened the whole link from the email. "+
			"If it still does not work, contact the sender."
		wb.render(w, r, http.StatusNotFound, "notice", v)
	case errors.Is(err, ErrExpired):
		v.Title, v.Explanation = "This message has expired", "Secure messages can be read for a limited time only. "+
			"Contact the sender if you still need it."
		wb.render(w, r, http.StatusGone, "notice", v)
	case errors.Is(err, ErrRecalled):
		v.Title, v.Explanation = "This message was withdrawn", "The sender recalled this message. Contact them if you have questions."
		wb.render(w, r, http.StatusGone, "notice", v)
	case errors.Is(err, ErrLocked):
		minutes := max(1, int(l.LockedUntil.Sub(wb.svc.now()).Minutes())+1)
		w.Header().Set("Retry-After", strconv.Itoa(minutes*60))
		v.Title = "Too many wrong codes"
		v.Explanation = fmt.Sprintf("To protect this message, it is locked for %d minutes. Then ask for a new code.", minutes)
		wb.render(w, r, http.StatusTooManyRequests, "notice", v)
	default:
		return false
	}
	return true
}

func client(w http.ResponseWriter, r *http.Request) Client {
	ip := r.RemoteAddr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().Unmap().String()
	}
	return Client{SourceIP: ip, RequestID: w.Header().Get("X-Request-Id")}
}

// preCSRF returns the double-submit token of forms shown before sign-in,
// setting its cookie when the browser has none.
func preCSRF(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookieName); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	v := base64.RawURLEncoding.EncodeToString(raw[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookieName, Value: v, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return v
}

// checkPreCSRF compares the form's token with the cookie's in constant
// time.
func checkPreCSRF(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookieName)
	return err == nil && ck.Value != "" && hmac.Equal([]byte(ck.Value), []byte(r.PostFormValue("csrf")))
}

func expiredForm(w http.ResponseWriter, r *http.Request, wb *Web) {
	wb.render(w, r, http.StatusForbidden, "notice", view{Title: "This form has expired",
		Explanation: "Go back, reload the page and try again.", Base: "/p/" + r.PathValue("token")})
}

func (wb *Web) landing(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	l, err := wb.svc.Open(r.Context(), token)
	if wb.refuse(w, r, l, err) {
		return
	}
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	sess, sessErr := wb.session(r)
	switch {
	case sessErr == nil:
		wb.message(w, r, l, sess)
		return
	case wb.refuse(w, r, l, sessErr):
		return
	case errors.Is(sessErr, ErrNoSession):
	default:
		wb.fail(w, r, sessErr)
		return
	}
	b, err := wb.svc.branding(r.Context(), l.AccountID)
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	v := view{Title: "You have a secure message", Base: "/p/" + token, Brand: b, CSRF: preCSRF(w, r), Masked: l.MaskedRecipient(),
		CodePending: l.CodePending}
	if errors.Is(sessErr, ErrIdle) || r.URL.Query().Get("signed_out") == "idle" {
		v.Notice = fmt.Sprintf("You were signed out after %d minutes without activity.", int(wb.svc.opts.IdleTimeout.Minutes()))
	}
	if r.URL.Query().Get("signed_out") == "1" {
		v.Notice = "You are signed out."
	}
	wb.render(w, r, http.StatusOK, "start", v)
}

// session returns the request's session on the link's message.
func (wb *Web) session(r *http.Request) (Session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return Session{}, ErrNoSession
	}
	return wb.svc.Session(r.Context(), r.PathValue("token"), ck.Value)
}

func (wb *Web) requestCode(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !checkPreCSRF(r) {
		expiredForm(w, r, wb)
		return
	}
	err := wb.svc.SendCode(r.Context(), token, client(w, r))
	if errors.Is(err, ErrCodeTooSoon) {
		http.Redirect(w, r, "/p/"+token+"/verify?sent=again", http.StatusSeeOther)
		return
	}
	if err != nil {
		l, _ := wb.svc.Open(r.Context(), token)
		if !wb.refuse(w, r, l, err) {
			wb.fail(w, r, err)
		}
		return
	}
	http.Redirect(w, r, "/p/"+token+"/verify?sent=1", http.StatusSeeOther)
}

func (wb *Web) verifyView(w http.ResponseWriter, r *http.Request, l Link) (view, error) {
	b, err := wb.svc.branding(r.Context(), l.AccountID)
	if err != nil {
		return view{}, err
	}
	v := view{Title: "Enter your code", Base: "/p/" + r.PathValue("token"), Brand: b, CSRF: preCSRF(w, r), Masked: l.MaskedRecipient(),
		Digits: CodeDigits, CodeMinutes: int(wb.svc.opts.CodeTTL.Minutes()), ChallengeKind: l.ChallengeKind, ChallengeHint: l.ChallengeHint}
	switch l.ChallengeKind {
	case ChallengePassphrase:
		v.ChallengeLabel = "Passphrase from the sender"
	case ChallengeDOB:
		v.ChallengeLabel = "Your date of birth"
	}
	return v, nil
}

func (wb *Web) verifyPage(w http.ResponseWriter, r *http.Request) {
	l, err := wb.svc.Open(r.Context(), r.PathValue("token"))
	if wb.refuse(w, r, l, err) {
		return
	}
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	v, err := wb.verifyView(w, r, l)
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	switch r.URL.Query().Get("sent") {
	case "1":
		v.Notice = "We emailed a code to " + l.MaskedRecipient() + "."
	case "again":
		v.Notice = "A code was sent moments ago. Check your inbox, or wait a minute before asking again."
	}
	wb.render(w, r, http.StatusOK, "verify", v)
}

func (wb *Web) verifySubmit(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !checkPreCSRF(r) {
		expiredForm(w, r, wb)
		return
	}
	sess, err := wb.svc.Verify(r.Context(), token, r.PostFormValue("code"), r.PostFormValue("answer"), client(w, r))
	if errors.Is(err, ErrBadCode) {
		l, lerr := wb.svc.Open(r.Context(), token)
		if lerr != nil {
			if !wb.refuse(w, r, l, lerr) {
				wb.fail(w, r, lerr)
			}
			return
		}
		v, verr := wb.verifyView(w, r, l)
		if verr != nil {
			wb.fail(w, r, verr)
			return
		}
		v.Error = "That code is not right, has expired or was already used."
		if l.ChallengeKind != "" {
			v.Error = "The code or the answer is not right, or the code has expired."
		}
		wb.render(w, r, http.StatusUnauthorized, "verify", v)
		return
	}
	if err != nil {
		l, _ := wb.svc.Open(r.Context(), token)
		if errors.Is(err, ErrLocked) && l.LockedUntil.IsZero() {
			l.LockedUntil = wb.svc.now().Add(wb.svc.opts.Lockout)
		}
		if !wb.refuse(w, r, l, err) {
			wb.fail(w, r, err)
		}
		return
	}
	// Max-Age rather than Expires: the browser's clock need not agree
	// with ours.
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sess.Token(), Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: max(1, int(sess.ExpiresAt.Sub(wb.svc.now()).Seconds()))})
	http.Redirect(w, r, "/p/"+token, http.StatusSeeOther)
}

// requireSession returns the session of a request made after sign-in,
// or answers for it: the start page when signed out, the refusal page
// when the message no longer opens.
func (wb *Web) requireSession(w http.ResponseWriter, r *http.Request, post bool) (Session, bool) {
	sess, err := wb.session(r)
	if err != nil {
		l, lerr := wb.svc.Open(r.Context(), r.PathValue("token"))
		if lerr != nil {
			err = lerr
		}
		switch {
		case wb.refuse(w, r, l, err):
		case errors.Is(err, ErrIdle):
			http.Redirect(w, r, "/p/"+r.PathValue("token")+"?signed_out=idle", http.StatusSeeOther)
		case errors.Is(err, ErrNoSession):
			http.Redirect(w, r, "/p/"+r.PathValue("token"), http.StatusSeeOther)
		default:
			wb.fail(w, r, err)
		}
		return Session{}, false
	}
	if post && !sess.CheckCSRF(r.PostFormValue("csrf")) {
		expiredForm(w, r, wb)
		return Session{}, false
	}
	return sess, true
}

func (wb *Web) message(w http.ResponseWriter, r *http.Request, l Link, sess Session) {
	c, err := wb.svc.Read(r.Context(), sess, client(w, r))
	if err != nil {
		if !wb.refuse(w, r, l, err) {
			wb.fail(w, r, err)
		}
		return
	}
	b, err := wb.svc.branding(r.Context(), sess.AccountID)
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	title := c.Subject
	if title == "" {
		title = "Secure message"
	}
	v := view{Title: title, Base: "/p/" + r.PathValue("token"), Brand: b, CSRF: sess.CSRFToken(), SignedIn: true,
		IdleSeconds: int(wb.svc.opts.IdleTimeout.Seconds()) + 5, From: fromWithName(sess.Sender, b.Name), To: sess.Recipient,
		Expires: l.ExpiresAt.UTC().Format("2 January 2006, 15:04 UTC"), ExpiresISO: l.ExpiresAt.UTC().Format(time.RFC3339),
		HasHTML: c.HTML != "", Text: c.Text}
	for i, a := range c.Attachments {
		v.Attachments = append(v.Attachments, attachmentView{Index: i, Name: a.Filename, Size: humanSize(len(a.Content))})
	}
	if r.URL.Query().Get("replied") == "1" {
		v.Notice = "Your reply was sent securely."
	}
	wb.render(w, r, http.StatusOK, "message", v)
}

func humanSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// body serves the sender's HTML into the page's sandboxed frame.
func (wb *Web) body(w http.ResponseWriter, r *http.Request) {
	sess, ok := wb.requireSession(w, r, false)
	if !ok {
		return
	}
	html, err := wb.svc.Body(r.Context(), sess)
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", bodyPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, html)
}

func (wb *Web) download(w http.ResponseWriter, r *http.Request) {
	sess, ok := wb.requireSession(w, r, false)
	if !ok {
		return
	}
	i, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		i = -1
	}
	a, err := wb.svc.Download(r.Context(), sess, i, client(w, r))
	if errors.Is(err, ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	h := w.Header()
	// Always a download, never rendered in our origin: octet-stream,
	// nosniff (set for every response) and a sandbox CSP in case a
	// browser renders it anyway (RFC 6266 for the disposition).
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Filename}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Content-Length", strconv.Itoa(len(a.Content)))
	_, _ = w.Write(a.Content)
}

// maxReplyForm bounds a reply's form in memory and on the wire.
const maxReplyForm = MaxReplyBytes + 64<<10

func (wb *Web) reply(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxReplyForm)
	if err := r.ParseMultipartForm(maxReplyForm); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		wb.render(w, r, http.StatusRequestEntityTooLarge, "notice", view{Title: "The reply is too large",
			Explanation: "Replies and their attachment may be up to 8 MB together.", Base: "/p/" + r.PathValue("token")})
		return
	}
	sess, ok := wb.requireSession(w, r, true)
	if !ok {
		return
	}
	rep := Reply{Text: r.PostFormValue("text")}
	if f, hdr, err := r.FormFile("attachment"); err == nil {
		data, rerr := io.ReadAll(io.LimitReader(f, MaxReplyBytes+1))
		_ = f.Close()
		if rerr != nil {
			wb.fail(w, r, rerr)
			return
		}
		if len(data) > 0 || hdr.Filename != "" {
			rep.Attachment = &Attachment{Filename: hdr.Filename, ContentType: hdr.Header.Get("Content-Type"), Content: data}
		}
	}
	err := wb.svc.SendReply(r.Context(), sess, rep, client(w, r))
	var fe *FieldError
	if errors.As(err, &fe) {
		wb.render(w, r, http.StatusUnprocessableEntity, "notice", view{Title: "The reply was not sent",
			Explanation: "Please check it: " + fe.Message + ".", Base: "/p/" + r.PathValue("token")})
		return
	}
	if err != nil {
		wb.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/p/"+r.PathValue("token")+"?replied=1", http.StatusSeeOther)
}

func (wb *Web) logout(w http.ResponseWriter, r *http.Request) {
	sess, ok := wb.requireSession(w, r, true)
	if !ok {
		return
	}
	if err := wb.svc.Logout(r.Context(), sess, client(w, r)); err != nil {
		wb.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/p/"+r.PathValue("token")+"?signed_out=1", http.StatusSeeOther)
}

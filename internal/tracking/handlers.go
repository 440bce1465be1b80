package tracking

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
)

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("unsubscribe").Parse(pageHTML))

// pixel is a 1x1 transparent GIF89a.
var pixel = []byte{
	'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff,
	0x21, 0xf9, 4, 1, 0, 0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b,
}

// Routes returns the public endpoints, for the HTTP layer to mount
// behind its middleware. They need no authentication: the token in the
// path is the credential, and names one recipient of one message.
//
//	GET  /t/o/{token}  open pixel: always the GIF, a bad token records nothing
//	GET  /t/c/{token}  click: 302 to the stored target, 404 for a bad token
//	GET  /u/{token}    unsubscribe confirmation page with a button
//	POST /u/{token}    RFC 8058 one-click unsubscribe (and the page's button)
//
// HEAD requests (link scanners) are answered without recording. No
// cookie is read or set (RFC 8058 §3.2).
func (s *Service) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /t/o/{token}": http.HandlerFunc(s.servePixel),
		"GET /t/c/{token}": http.HandlerFunc(s.serveClick),
		"GET /u/{token}":   http.HandlerFunc(s.servePage),
		"POST /u/{token}":  http.HandlerFunc(s.serveUnsubscribe),
	}
}

func noStore(w http.ResponseWriter) {
	// Each fetch is an event: no cache may answer for us.
	w.Header().Set("Cache-Control", "no-store, no-cache, max-age=0")
}

// servePixel answers the GIF whatever happens, so a pixel never tells a
// forged token from a real one nor shows a broken image.
func (s *Service) servePixel(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		if err := s.Open(r.Context(), r.PathValue("token"), r.UserAgent()); err != nil && !errors.Is(err, ErrInvalidToken) {
			s.log.ErrorContext(r.Context(), "record open", "error", err)
		}
	}
	noStore(w)
	w.Header().Set("Content-Type", "image/gif")
	_, _ = w.Write(pixel)
}

func (s *Service) serveClick(w http.ResponseWriter, r *http.Request) {
	target, err := s.Click(r.Context(), r.PathValue("token"), r.UserAgent(), r.Method == http.MethodGet)
	if err != nil {
		s.fail(w, r, err, "record click")
		return
	}
	noStore(w)
	http.Redirect(w, r, target, http.StatusFound)
}

// view is what the page template sees.
type view struct {
	Title         string
	Invalid, Done bool
	Address, From string
}

func (s *Service) servePage(w http.ResponseWriter, r *http.Request) {
	u, err := s.Unsubscription(r.Context(), r.PathValue("token"))
	if err != nil {
		s.fail(w, r, err, "unsubscribe page")
		return
	}
	title := "Unsubscribe"
	if u.Done {
		title = "You are unsubscribed"
	}
	s.render(w, http.StatusOK, view{Title: title, Done: u.Done, Address: u.Address, From: u.From})
}

// serveUnsubscribe is the RFC 8058 §3.2 POST: the body is
// "List-Unsubscribe=One-Click" (form-urlencoded or multipart), no cookie
// or confirmation is needed, and the answer needs no further action. A
// POST without that body is accepted too: only a deliberate POST
// reaches here (link scanners GET), and a lost unsubscribe is worse than
// a sloppy client.
func (s *Service) serveUnsubscribe(w http.ResponseWriter, r *http.Request) {
	method := MethodOneClick
	// ParseMultipartForm parses urlencoded bodies too; a body that parses
	// neither way is still an unsubscribe.
	_ = r.ParseMultipartForm(64 << 10)
	if r.PostForm.Get("source") == MethodPage {
		method = MethodPage
	}
	tok := r.PathValue("token")
	if err := s.Unsubscribe(r.Context(), tok, method); err != nil {
		s.fail(w, r, err, "unsubscribe")
		return
	}
	u, err := s.Unsubscription(r.Context(), tok)
	if err != nil {
		s.fail(w, r, err, "unsubscribe page")
		return
	}
	s.render(w, http.StatusOK, view{Title: "You are unsubscribed", Done: true, Address: u.Address, From: u.From})
}

// fail answers a bad token with a 404 page (the same for forged,
// tampered and expired tokens) and anything else with a 500; the log
// names neither the token nor the recipient.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error, what string) {
	if errors.Is(err, ErrInvalidToken) {
		s.render(w, http.StatusNotFound, view{Title: "Link not valid", Invalid: true})
		return
	}
	s.log.ErrorContext(r.Context(), what, "error", err)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "Something went wrong; try again later.", http.StatusInternalServerError)
}

func (s *Service) render(w http.ResponseWriter, status int, v view) {
	noStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.ExecuteTemplate(w, "page", v); err != nil {
		s.log.Error("render unsubscribe page", "error", err)
	}
}

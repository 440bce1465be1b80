// Package wkdtest is a Web Key Directory on loopback for tests: an HTTPS
// server answering the advanced and the direct method's URLs
// (draft-koch-openpgp-webkey-service section 3.1) for the keys the caller
// publishes, with a status or redirect the caller sets while it runs and
// a record of the requests, and a throw-away GnuPG home to make keys with
// gpg itself and decrypt what was sent to them. It is for tests only.
package wkdtest

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/sealpost/sealpost/internal/wkd"
)

// Method is where a key is published.
type Method int

// Methods of the draft.
const (
	// Advanced: https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/<hash>.
	Advanced Method = iota
	// Direct: https://<domain>/.well-known/openpgpkey/hu/<hash>.
	Direct
)

// Request is one request the server got.
type Request struct {
	Host  string // without the port
	Path  string
	Local string // the l= parameter
}

// Server serves published keys over HTTPS.
type Server struct {
	// Port is the loopback HTTPS port (to give as the directory port).
	Port int

	srv      *httptest.Server
	mu       sync.Mutex
	keys     map[string][]byte // host + path -> body
	status   int
	redirect string
	hold     chan struct{} // while set, answers wait for it to close
	requests []Request
}

// Start serves HTTPS with cert, which should name the hosts asked for
// (openpgpkey.<domain> for the advanced method, <domain> for the direct).
func Start(cert tls.Certificate) *Server {
	s := &Server{keys: map[string][]byte{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	s.Port, _ = strconv.Atoi(port)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Publish serves body as address's key by method (nil removes it: 404).
func (s *Server) Publish(m Method, address string, body []byte) {
	at := strings.LastIndexByte(address, '@')
	local, domain := address[:at], strings.ToLower(address[at+1:])
	k := domain + "/.well-known/openpgpkey/hu/" + wkd.Hash(local)
	if m == Advanced {
		k = "openpgpkey." + domain + "/.well-known/openpgpkey/" + domain + "/hu/" + wkd.Hash(local)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if body == nil {
		delete(s.keys, k)
		return
	}
	s.keys[k] = body
}

// SetStatus makes every answer carry status instead of the key (0: back
// to normal).
func (s *Server) SetStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// RedirectTo makes every answer a 302 to url ("": back to normal).
func (s *Server) RedirectTo(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirect = url
}

// Hold makes answers wait until release is called (to have lookups
// overlap without timing).
func (s *Server) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Requests returns the requests so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Host: host, Path: r.URL.Path, Local: r.URL.Query().Get("l")})
	body, ok := s.keys[strings.ToLower(host)+r.URL.Path]
	status, redirect, hold := s.status, s.redirect, s.hold
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	switch {
	case redirect != "":
		http.Redirect(w, r, redirect, http.StatusFound)
	case status != 0:
		w.WriteHeader(status)
	case !ok:
		http.NotFound(w, r)
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	}
}

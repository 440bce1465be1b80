// Package mtaststest is an MTA-STS policy host on loopback for tests: an
// HTTPS server answering /.well-known/mta-sts.txt for every
// mta-sts.<domain> pointed at it, with a policy, status and content type
// the caller sets and changes while it runs, and a count of fetches.
package mtaststest

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
)

// Server serves policies over HTTPS.
type Server struct {
	// Port is the loopback HTTPS port (to give as the policy port).
	Port int

	srv     *httptest.Server
	mu      sync.Mutex
	policy  map[string]string // domain -> policy text
	status  int
	ctype   string
	fetches int
}

// Start serves HTTPS with cert (which should name the mta-sts hosts).
func Start(cert tls.Certificate) *Server {
	s := &Server{policy: map[string]string{}, status: http.StatusOK, ctype: "text/plain; charset=utf-8"}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	s.Port, _ = strconv.Atoi(port)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetPolicy publishes text as domain's policy ("" removes it: 404).
func (s *Server) SetPolicy(domain, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy[domain] = text
}

// SetStatus makes every answer carry status (a 3xx redirects to
// https://elsewhere.example/).
func (s *Server) SetStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// SetContentType sets the answers' Content-Type.
func (s *Server) SetContentType(ct string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctype = ct
}

// Fetches returns how many policy requests were made.
func (s *Server) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.fetches++
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	text, ok := s.policy[strings.TrimPrefix(host, "mta-sts.")]
	status, ctype := s.status, s.ctype
	s.mu.Unlock()
	if r.URL.Path != "/.well-known/mta-sts.txt" || !ok || text == "" {
		http.NotFound(w, r)
		return
	}
	if status >= 300 && status < 400 {
		http.Redirect(w, r, "https://elsewhere.example/.well-known/mta-sts.txt", status)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

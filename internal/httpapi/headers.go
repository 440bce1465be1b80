package httpapi

import (
	"mime"
	"net/http"
	"strings"
)

// htmlPolicy is the Content-Security-Policy of every HTML response: only
// same-origin resources, no inline script or style, no plugins, no
// framing (the JS and CSS of our pages are separate embedded files).
const htmlPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// hstsPolicy asks browsers to use HTTPS only for two years
// (RFC 6797 §6.1). It is sent only over TLS, as §7.2 requires.
const hstsPolicy = "max-age=63072000; includeSubDomains"

// secureHeaders sets the headers every response carries. The CSP is set
// later, by contentSecurityPolicy, once the content type is known.
func (s *Server) secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if s.tls {
			h.Set("Strict-Transport-Security", hstsPolicy)
		}
		if isAPIPath(r.URL.Path) {
			// API responses hold account data: no cache may keep them.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// isAPIPath reports whether path is under the versioned API.
func isAPIPath(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/")
}

// contentSecurityPolicy runs just before a response header is sent and
// adds the CSP to HTML responses that do not set their own.
func contentSecurityPolicy(h http.Header) {
	if h.Get("Content-Security-Policy") != "" {
		return
	}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && mt == "text/html" {
		h.Set("Content-Security-Policy", htmlPolicy)
	}
}

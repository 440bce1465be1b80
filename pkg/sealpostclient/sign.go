// Package sealpostclient is a small Go client for the Sealpost API that
// signs requests with an HMAC session (scheme Sealpost-HMAC-SHA256). The
// canonical string it signs is defined here, once, and the server verifies
// with the same function, so the two cannot drift.
package sealpostclient

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Scheme is the Authorization scheme of signed requests.
const Scheme = "Sealpost-HMAC-SHA256"

// DefaultSignedHeaders are signed on every request (lower case). Host
// binds the request to the server, content-type to the body's meaning.
var DefaultSignedHeaders = []string{"content-type", "host"}

// CanonicalString returns the string a request's signature covers, its
// lines joined by "\n":
//
//  1. the scheme, "Sealpost-HMAC-SHA256";
//  2. the method in upper case;
//  3. the escaped request path (URL.EscapedPath);
//  4. the query: parameters sorted by name then value, name and value
//     each percent-encoded as RFC 3986 unreserved characters allow, as
//     name=value joined by "&" (empty when there is none);
//  5. the signed header names, lower case, sorted, joined by ";";
//  6. one line per signed header, "name:value", value trimmed, several
//     values of one header joined by ","; "host" is the request's Host;
//  7. the hex SHA-256 of the body (of the empty string when there is none);
//  8. the timestamp, decimal Unix seconds;
//  9. the nonce.
func CanonicalString(r *http.Request, body []byte, signedHeaders []string, timestamp int64, nonce string) string {
	names := make([]string, len(signedHeaders))
	for i, h := range signedHeaders {
		names[i] = strings.ToLower(strings.TrimSpace(h))
	}
	sort.Strings(names)
	bodySum := sha256.Sum256(body)
	lines := []string{
		Scheme,
		strings.ToUpper(r.Method),
		r.URL.EscapedPath(),
		canonicalQuery(r.URL.Query()),
		strings.Join(names, ";"),
	}
	for _, n := range names {
		lines = append(lines, n+":"+headerValue(r, n))
	}
	lines = append(lines, hex.EncodeToString(bodySum[:]), fmt.Sprint(timestamp), nonce)
	return strings.Join(lines, "\n")
}

func headerValue(r *http.Request, name string) string {
	if name == "host" {
		if r.Host != "" {
			return strings.TrimSpace(r.Host)
		}
		return strings.TrimSpace(r.URL.Host)
	}
	vals := r.Header.Values(name)
	for i := range vals {
		vals[i] = strings.TrimSpace(vals[i])
	}
	return strings.Join(vals, ",")
}

func canonicalQuery(q url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{escape(k), escape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes everything but RFC 3986 §2.3 unreserved
// characters, so "+" and " " never mean the same thing.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Signature returns the hex HMAC-SHA256 of canonical under secret.
func Signature(secret []byte, canonical string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(canonical))
	return hex.EncodeToString(m.Sum(nil))
}

// Authorization is a parsed Authorization header of the scheme.
type Authorization struct {
	Session       string
	Timestamp     int64
	Nonce         string
	SignedHeaders []string
	Signature     string
}

// String formats the header value.
func (a Authorization) String() string {
	return fmt.Sprintf("%s Session=%s, Timestamp=%d, Nonce=%s, SignedHeaders=%s, Signature=%s",
		Scheme, a.Session, a.Timestamp, a.Nonce, strings.Join(a.SignedHeaders, ";"), a.Signature)
}

// ParseAuthorization parses a header value of the scheme; ok is false
// when the value is of another scheme.
func ParseAuthorization(value string) (a Authorization, ok bool, err error) {
	scheme, rest, found := strings.Cut(value, " ")
	if !found || !strings.EqualFold(scheme, Scheme) {
		return Authorization{}, false, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || v == "" || seen[k] {
			return Authorization{}, true, fmt.Errorf("malformed %s parameter %q", Scheme, k)
		}
		seen[k] = true
		switch k {
		case "Session":
			a.Session = v
		case "Timestamp":
			if _, err := fmt.Sscan(v, &a.Timestamp); err != nil {
				return Authorization{}, true, fmt.Errorf("malformed %s timestamp", Scheme)
			}
		case "Nonce":
			a.Nonce = v
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		default:
			return Authorization{}, true, fmt.Errorf("unknown %s parameter %q", Scheme, k)
		}
	}
	if a.Session == "" || a.Timestamp == 0 || a.Nonce == "" || len(a.Signature) != 64 || len(a.Nonce) > 128 {
		return Authorization{}, true, fmt.Errorf("incomplete %s header", Scheme)
	}
	for _, req := range DefaultSignedHeaders {
		if !contains(a.SignedHeaders, req) {
			return Authorization{}, true, fmt.Errorf("%s must sign %s", Scheme, req)
		}
	}
	return a, true, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}

// ReadBody returns the request body and puts an identical one back, so
// the request can still be sent or served.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

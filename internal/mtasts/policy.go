// Package mtasts implements the sending side of SMTP MTA Strict Transport
// Security (RFC 8461): it discovers a destination domain's policy (the
// _mta-sts TXT record, then the policy file over verified HTTPS), parses
// it, caches it in memory and in the database so a restart keeps it, and
// answers which MX hosts a policy allows. It does not connect to MX hosts
// or decide TLS itself: package delivery applies the policy it returns.
package mtasts

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy modes (RFC 8461 §5).
const (
	// ModeEnforce: deliver only to MX hosts that match the policy, over
	// TLS with a certificate valid for the MX name.
	ModeEnforce = "enforce"
	// ModeTesting: deliver as without a policy, and report would-be
	// failures.
	ModeTesting = "testing"
	// ModeNone: the domain has withdrawn its policy (RFC 8461 §8.3).
	ModeNone = "none"
)

// MaxPolicySize bounds a policy file; RFC 8461 §3.3 lets senders limit
// it, and 64 KiB is ample for a handful of lines.
const MaxPolicySize = 64 << 10

// maxMaxAge is the largest max_age (RFC 8461 §3.2: 31557600 seconds,
// about a year).
const maxMaxAge = 31557600

// Policy is a parsed policy file.
type Policy struct {
	// Mode is ModeEnforce, ModeTesting or ModeNone.
	Mode string
	// MX are the allowed MX patterns, lower case, without trailing dot:
	// host names or "*.example.org" wildcards.
	MX []string
	// MaxAge is how long the policy may be cached.
	MaxAge time.Duration
}

// ErrSyntax wraps every reason a policy or record does not parse.
var ErrSyntax = errors.New("mtasts: invalid syntax")

func syntaxError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(format, args...))
}

// Parse parses a policy file (RFC 8461 §3.2): "key: value" lines ended by
// CRLF or LF; version, mode and max_age are required, mx is required (one
// line per pattern) unless the mode is none; unknown keys are ignored for
// future extensions. A key given twice keeps its first value.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, syntaxError("policy larger than %d bytes", MaxPolicySize)
	}
	var p Policy
	var version, maxAge string
	seen := map[string]bool{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		key, value, ok := strings.Cut(s, ":")
		if !ok {
			return nil, syntaxError("line %d has no colon", n+1)
		}
		// sts-policy-field = key ":" *WSP value *WSP; keys have no spaces.
		key = strings.TrimRight(key, " \t")
		value = strings.Trim(value, " \t")
		if !validKey(key) {
			return nil, syntaxError("line %d: bad key", n+1)
		}
		if key == "mx" {
			pat, err := parseMX(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			p.MX = append(p.MX, pat)
			continue
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		switch key {
		case "version":
			version = value
		case "mode":
			p.Mode = value
		case "max_age":
			maxAge = value
		}
	}
	if version != "STSv1" {
		return nil, syntaxError("version must be STSv1")
	}
	switch p.Mode {
	case ModeEnforce, ModeTesting, ModeNone:
	default:
		return nil, syntaxError("mode must be enforce, testing or none")
	}
	// sts-policy-max-age-value = 1*10(DIGIT), at most 31557600.
	if maxAge == "" || len(maxAge) > 10 || strings.Trim(maxAge, "0123456789") != "" {
		return nil, syntaxError("max_age must be a number of seconds")
	}
	secs, err := strconv.Atoi(maxAge)
	if err != nil || secs > maxMaxAge {
		return nil, syntaxError("max_age must be at most %d", maxMaxAge)
	}
	p.MaxAge = time.Duration(secs) * time.Second
	if p.Mode != ModeNone && len(p.MX) == 0 {
		return nil, syntaxError("mode %s needs at least one mx", p.Mode)
	}
	return &p, nil
}

func validKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// parseMX checks one mx pattern: a host name, or "*." and a host name
// (RFC 8461 §3.2, §4.1).
func parseMX(v string) (string, error) {
	v = strings.TrimSuffix(strings.ToLower(v), ".")
	host := strings.TrimPrefix(v, "*.")
	if !validHost(host) {
		return "", syntaxError("bad mx pattern %q", v)
	}
	return v, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// Matches reports whether the MX host name is allowed by the policy (RFC
// 8461 §4.1): equal to a pattern, case-insensitively, or one label in
// front of a "*." pattern's rest ("*.example.org" matches
// "mx1.example.org", not "example.org" nor "a.mx1.example.org").
func (p *Policy) Matches(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, pat := range p.MX {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// ParseRecord parses the TXT record at _mta-sts.<domain> (RFC 8461 §3.1):
// "v=STSv1; id=<1-32 letters and digits>", fields separated by ";" and
// optional spaces, v first, extension fields ignored. It returns the id.
func ParseRecord(txt string) (string, error) {
	fields := strings.Split(txt, ";")
	if strings.TrimRight(fields[0], " \t") != "v=STSv1" {
		return "", syntaxError("record must start with v=STSv1")
	}
	id := ""
	for _, f := range fields[1:] {
		f = strings.Trim(f, " \t")
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return "", syntaxError("bad record field")
		}
		if k == "id" && id == "" {
			if v == "" || len(v) > 32 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
				return "", syntaxError("id must be 1 to 32 letters and digits")
			}
			id = v
		}
	}
	if id == "" {
		return "", syntaxError("record has no id")
	}
	return id, nil
}

// recordID picks the policy id from a domain's TXT records: those not
// starting with "v=STSv1" are ignored; anything but exactly one
// remaining, valid record means no policy (RFC 8461 §3.1).
func recordID(txts []string) (string, error) {
	var sts []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			sts = append(sts, t)
		}
	}
	if len(sts) != 1 {
		return "", syntaxError("%d v=STSv1 records", len(sts))
	}
	return ParseRecord(sts[0])
}

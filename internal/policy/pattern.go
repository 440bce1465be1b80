package policy

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Patterns name senders and recipient domains. A pattern is one of:
//
//	user@clinic.example   one address (compared case-insensitively)
//	clinic.example        that domain exactly
//	*.clinic.example      any subdomain of clinic.example, not itself
//
// Domains are compared as IDNA A-labels in lower case (RFC 5890 §2.3.2.1),
// which is how package mail stores recipient domains. No other wildcard
// exists: "*" alone, "*@domain", "a*.example" and "*.*.example" are
// refused, so a pattern always says plainly what it covers.

const badWildcard = `"*" is only allowed as a whole first label, as in *.example.org`

// normaliseDomainPattern validates a domain pattern and returns it in
// canonical form, or a message saying what is wrong.
func normaliseDomainPattern(p string) (string, string) {
	wild := strings.HasPrefix(p, "*.")
	rest := p
	if wild {
		rest = p[2:]
	}
	if strings.Contains(rest, "*") {
		return p, badWildcard
	}
	if strings.Contains(rest, "@") {
		return p, "must be a domain such as example.org, not an address"
	}
	d, ok := asciiDomain(rest, wild)
	if !ok {
		return p, "must be a domain such as example.org or *.example.org"
	}
	if wild {
		return "*." + d, ""
	}
	return d, ""
}

// normaliseSender validates a sender pattern: an address or a domain
// pattern.
func normaliseSender(p string) (string, string) {
	at := strings.LastIndexByte(p, '@')
	if at < 0 {
		return normaliseDomainPattern(p)
	}
	local, domain := p[:at], p[at+1:]
	if local == "*" {
		return p, "use the domain alone (example.org) to match every address at it"
	}
	if strings.Contains(p, "*") {
		return p, badWildcard
	}
	local = strings.ToLower(local)
	if local == "" || len(local) > 64 || !printable(local) || strings.ContainsAny(local, " <>\"@") {
		return p, "must be an address such as billing@example.org"
	}
	d, ok := asciiDomain(domain, false)
	if !ok {
		return p, "must be an address such as billing@example.org"
	}
	return local + "@" + d, ""
}

// asciiDomain converts d to lower-case A-labels and checks its labels
// (RFC 1035 §2.3.1 letters, digits, hyphens). An exact domain needs two
// labels; a wildcard's base may be one ("*.gov").
func asciiDomain(d string, oneLabelOK bool) (string, bool) {
	if d == "" || strings.HasSuffix(d, ".") || !utf8.ValidString(d) {
		return "", false
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil || len(a) > 253 {
		return "", false
	}
	a = strings.ToLower(a)
	// A-labels that do not decode back (bad Punycode) are refused, so a
	// canonical pattern always validates again.
	if again, err := idna.Lookup.ToASCII(a); err != nil || again != a {
		return "", false
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 && !oneLabelOK {
		return "", false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", false
			}
		}
	}
	return a, true
}

// domainMatches reports whether domain (lower-case A-labels) matches a
// canonical domain pattern.
func domainMatches(pattern, domain string) bool {
	if base, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(domain, "."+base)
	}
	return domain == pattern
}

// senderMatches reports whether the address matches a canonical sender
// pattern.
func senderMatches(pattern, address string) bool {
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return false
	}
	local, domain := strings.ToLower(address[:at]), canonicalDomain(address[at+1:])
	if strings.Contains(pattern, "@") {
		return local+"@"+domain == pattern
	}
	return domainMatches(pattern, domain)
}

// canonicalDomain lower-cases a domain and converts it to A-labels,
// leaving it as given when it does not convert (it then matches no
// pattern, as no pattern holds invalid labels).
func canonicalDomain(d string) string {
	d = strings.TrimSuffix(d, ".")
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		return strings.ToLower(a)
	}
	return strings.ToLower(d)
}

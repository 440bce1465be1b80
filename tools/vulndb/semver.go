package main

import (
	"cmp"
	"strings"
)

// version is a parsed semantic version (https://semver.org/spec/v2.0.0.html)
// in the Go module flavour: an optional "v" or "go" prefix, and the
// shorthands "v1" and "v1.2" for "v1.0.0" and "v1.2.0" when no pre-release
// is given. Build metadata is parsed and ignored, as semver orders it.
type version struct {
	major, minor, patch string // decimal digits, no leading zeros
	prerelease          []string
}

// parseVersion parses s; ok is false when s is not a valid version.
func parseVersion(s string) (v version, ok bool) {
	switch {
	case strings.HasPrefix(s, "go"):
		s = s[2:]
	case strings.HasPrefix(s, "v"):
		s = s[1:]
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return version{}, false
		}
		s = s[:i]
	}
	pre := ""
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s, pre = s[:i], s[i+1:]
		if !validIdents(pre, true) {
			return version{}, false
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) > 3 || (len(parts) < 3 && pre != "") {
		return version{}, false
	}
	for _, p := range parts {
		if !isNum(p) {
			return version{}, false
		}
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	v = version{major: parts[0], minor: parts[1], patch: parts[2]}
	if pre != "" {
		v.prerelease = strings.Split(pre, ".")
	}
	return v, true
}

// isNum reports whether s is a decimal number without leading zeros.
func isNum(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validIdents checks a dot-separated list of pre-release (strict: numeric
// identifiers without leading zeros) or build identifiers.
func validIdents(s string, strict bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if strict && numeric && !isNum(id) {
			return false
		}
	}
	return true
}

// compareNum compares two decimal numbers without leading zeros, of any
// length.
func compareNum(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// compareVersions orders two version strings. As golang.org/x/mod/semver
// does, an invalid version sorts before every valid one and equal to any
// other invalid one.
func compareVersions(a, b string) int {
	va, okA := parseVersion(a)
	vb, okB := parseVersion(b)
	switch {
	case !okA && !okB:
		return 0
	case !okA:
		return -1
	case !okB:
		return 1
	}
	if c := compareNum(va.major, vb.major); c != 0 {
		return c
	}
	if c := compareNum(va.minor, vb.minor); c != 0 {
		return c
	}
	if c := compareNum(va.patch, vb.patch); c != 0 {
		return c
	}
	return comparePrerelease(va.prerelease, vb.prerelease)
}

// comparePrerelease applies semver §11: no pre-release ranks above any
// pre-release; identifiers compare numerically when both are numeric,
// numeric below alphanumeric, otherwise in ASCII order; a shorter list that
// is a prefix of a longer one ranks lower.
func comparePrerelease(a, b []string) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		nx, ny := isDigits(x), isDigits(y)
		switch {
		case nx && ny:
			return compareNum(x, y)
		case nx:
			return -1
		case ny:
			return 1
		default:
			return strings.Compare(x, y)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

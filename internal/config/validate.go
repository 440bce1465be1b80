package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Problem is one invalid setting: its dotted key and what is wrong.
// Reason never quotes a secret.
type Problem struct {
	Key    string
	Reason string
}

// ValidationError lists every invalid setting Validate found, in key
// order, so an operator fixes them in one go.
type ValidationError struct {
	Problems []Problem
}

// Error returns "invalid configuration: key: reason; key: reason".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Key + ": " + p.Reason
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// Validate checks every setting and returns a *ValidationError naming each
// bad key, or nil.
func (c Config) Validate() error {
	v := validator{}
	v.check("data_dir", c.DataDir != "", "must not be empty")
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "text")

	v.hostPort("http.addr", c.HTTP.Addr)
	v.publicURL("http.public_url", c.HTTP.PublicURL)
	if _, err := c.HTTP.Proxies(); err != nil {
		v.add("http.trusted_proxies", err.Error())
	}
	v.check("http.max_body_bytes", c.HTTP.MaxBodyBytes >= KiB && c.HTTP.MaxBodyBytes <= GiB,
		fmt.Sprintf("must be between 1KiB and 1GiB, got %d", c.HTTP.MaxBodyBytes))
	t := c.HTTP.TLS
	v.check("http.tls.key_file", t.CertFile == "" || t.KeyFile != "", "must be set when http.tls.cert_file is")
	v.check("http.tls.cert_file", t.KeyFile == "" || t.CertFile != "", "must be set when http.tls.key_file is")
	v.check("http.tls.dev", !t.Dev || (t.CertFile == "" && t.KeyFile == ""),
		"cannot be true together with http.tls.cert_file/key_file; use one or the other")

	v.check("console.idle_timeout", c.Console.IdleTimeout >= time.Minute && c.Console.IdleTimeout <= c.Console.AbsoluteTimeout,
		"must be at least 1m and at most console.absolute_timeout")
	v.check("console.absolute_timeout", c.Console.AbsoluteTimeout <= 7*24*time.Hour, "must be at most 168h")
	po := c.Portal
	v.check("portal.code_ttl", po.CodeTTL >= time.Minute && po.CodeTTL <= time.Hour, "must be between 1m and 1h")
	v.check("portal.max_code_attempts", po.MaxCodeAttempts >= 1 && po.MaxCodeAttempts <= 20, "must be between 1 and 20")
	v.check("portal.lockout", po.Lockout >= time.Minute && po.Lockout <= 24*time.Hour, "must be between 1m and 24h")
	v.check("portal.idle_timeout", po.IdleTimeout >= time.Minute && po.IdleTimeout <= po.AbsoluteTimeout,
		"must be at least 1m and at most portal.absolute_timeout")
	v.check("portal.absolute_timeout", po.AbsoluteTimeout <= 24*time.Hour, "must be at most 24h")
	if _, err := c.Delivery.ParsedRoutes(); err != nil {
		v.add("delivery.routes", err.Error())
	}
	v.oneOf("delivery.tls_policy", c.Delivery.TLSPolicy, "opportunistic", "required")
	v.atLeastOne("delivery.max_conns_per_domain", c.Delivery.MaxConnsPerDomain)
	v.atLeastOne("delivery.messages_per_conn", c.Delivery.MessagesPerConn)
	v.check("delivery.max_conns", c.Delivery.MaxConns >= 0, "must be 0 (no cap) or more")
	if _, err := c.Delivery.ParsedDomainRate(); err != nil {
		v.add("delivery.domain_rate", err.Error())
	}
	v.check("delivery.mta_sts_port", c.Delivery.MTASTSPort >= 1 && c.Delivery.MTASTSPort <= 65535, "must be a port number (443)")
	if c.Delivery.Smarthost != "" {
		v.hostPort("delivery.smarthost", c.Delivery.Smarthost)
	}
	v.oneOf("delivery.smarthost_tls", c.Delivery.SmarthostTLS, "starttls", "implicit")
	v.check("delivery.smarthost_username", c.Delivery.SmarthostUsername == "" || c.Delivery.Smarthost != "", "needs delivery.smarthost")
	v.check("delivery.smarthost_password", (c.Delivery.SmarthostPassword == "") == (c.Delivery.SmarthostUsername == ""),
		"must be set exactly when delivery.smarthost_username is")
	for key, addr := range map[string]string{"submission.addr": c.Submission.Addr, "submission.tls_addr": c.Submission.TLSAddr} {
		if addr != "off" {
			v.hostPort(key, addr)
		}
	}
	v.atLeastOne("submission.rate_per_minute", c.Submission.RatePerMinute)
	v.check("webhooks.timeout", c.Webhooks.Timeout <= time.Minute, "must be at most 1m")
	v.check("secureline.wkd_timeout", c.SecureLine.WKDTimeout >= 100*time.Millisecond && c.SecureLine.WKDTimeout <= 30*time.Second,
		"must be between 100ms and 30s (a lookup may hold up a message's acceptance)")
	v.check("secureline.wkd_port", c.SecureLine.WKDPort >= 1 && c.SecureLine.WKDPort <= 65535, "must be a port number (443)")
	v.check("webhooks.retry_window", c.Webhooks.RetryWindow <= 7*24*time.Hour, "must be at most 168h")
	v.atLeastOne("webhooks.max_attempts", c.Webhooks.MaxAttempts)
	v.check("bounce.domain", c.Bounce.Domain == "" || isDomainName(c.Bounce.Domain), "must be a domain name such as bounces.example.org")
	if c.Bounce.Addr != "off" {
		v.hostPort("bounce.addr", c.Bounce.Addr)
		v.check("bounce.addr", c.Bounce.Domain != "", "needs bounce.domain: the listener takes mail only for the bounce domain")
	}
	if _, err := c.DNS.ServerList(); err != nil {
		v.add("dns.servers", err.Error())
	}
	v.databaseURL("database.url", c.Database.URL)
	v.atLeastOne("database.max_conns", c.Database.MaxConns)
	v.atLeastOne("database.sqlite_readers", c.Database.SQLiteReaders)
	v.atLeastOne("queue.max_workers", c.Queue.MaxWorkers)

	v.check("bootstrap.account_name", strings.TrimSpace(c.Bootstrap.AccountName) != "", "must not be empty")
	v.email("bootstrap.owner_email", c.Bootstrap.OwnerEmail)

	v.positiveDurations(&c)
	return v.err()
}

// validator collects problems.
type validator struct {
	problems []Problem
}

func (v *validator) add(key, reason string) {
	v.problems = append(v.problems, Problem{Key: key, Reason: reason})
}

func (v *validator) check(key string, ok bool, reason string) {
	if !ok {
		v.add(key, reason)
	}
}

// err returns the problems in key declaration order, or nil.
func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	order := map[string]int{}
	for i, k := range Keys() {
		order[k] = i
	}
	slices.SortStableFunc(v.problems, func(a, b Problem) int { return order[a.Key] - order[b.Key] })
	return &ValidationError{Problems: v.problems}
}

func (v *validator) oneOf(key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.add(key, fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), value))
}

func (v *validator) atLeastOne(key string, n int) {
	v.check(key, n >= 1, fmt.Sprintf("must be at least 1, got %d", n))
}

// hostPort accepts "host:port", "[::1]:port" and ":port" (all interfaces)
// with a numeric port; port 0 asks the system for a free one.
func (v *validator) hostPort(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, fmt.Sprintf("must be host:port (such as 127.0.0.1:8080 or :8080), got %q", addr))
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		v.add(key, fmt.Sprintf("port must be a number from 0 to 65535, got %q", port))
	}
}

func (v *validator) publicURL(key, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(key, fmt.Sprintf("must be an absolute http or https URL such as https://mail.example.org, got %q", s))
		return
	}
	v.check(key, u.User == nil && u.RawQuery == "" && u.Fragment == "",
		"must not hold user info, a query or a fragment")
}

// databaseURL never quotes the value: it may hold a password.
func (v *validator) databaseURL(key, s string) {
	switch {
	case s == "":
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		v.check(key, p != "", "sqlite: needs a file path, such as sqlite:/var/lib/sealpost/sealpost.db")
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		_, err := url.Parse(s)
		v.check(key, err == nil, "is not a valid postgres:// URL")
	default:
		scheme, _, ok := strings.Cut(s, ":")
		if !ok || len(scheme) > 20 {
			scheme = "(none)"
		}
		v.add(key, fmt.Sprintf("must be empty, sqlite:PATH, postgres:// or postgresql://, got scheme %q", scheme))
	}
}

func (v *validator) email(key, s string) {
	a, err := mail.ParseAddress(s)
	v.check(key, err == nil && a.Name == "" && a.Address == s,
		fmt.Sprintf("must be a plain email address such as owner@example.org, got %q", s))
}

// positiveDurations requires every duration setting to be above zero: a
// zero timeout would mean "none" to net/http and "spin" to a poller.
func (v *validator) positiveDurations(c *Config) {
	for _, f := range fields() {
		if f.typ != durationType {
			continue
		}
		d := time.Duration(reflect.ValueOf(c).Elem().FieldByIndex(f.index).Int())
		v.check(f.key, d > 0, fmt.Sprintf("must be a positive duration, got %s", d))
	}
}

// isDomainName checks an ASCII host name: dot-separated labels of letters,
// digits and hyphens (RFC 1123 §2.1), at least two labels.
func isDomainName(s string) bool {
	labels := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(s) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

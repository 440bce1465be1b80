// Package config owns Sealpost's configuration: one typed Config with
// defaults, read from an optional strict YAML file, then SEALPOST_*
// environment variables, then explicit overrides (command-line flags), and
// validated with every bad value naming its dotted key. It also prints the
// effective configuration with secrets redacted.
//
// Every setting has one dotted key derived from the yaml tags of the
// struct fields ("http.tls.cert_file"); the environment variable is the
// key upper-cased with dots as underscores ("SEALPOST_HTTP_TLS_CERT_FILE").
// The package reads no files or environment of its own accord: callers pass
// the path and the environment in. It does not open stores, listen or
// create directories; package app does that from a validated Config.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is Sealpost's whole configuration. The zero value is not useful;
// start from Default or Load.
//
// Field types map to value syntax: string as is, bool as true/false, int
// as a decimal integer, int64 as a byte size (an integer, or a number with
// a unit such as "512KiB" or "10MiB"), time.Duration as a Go duration
// ("30s", "1m"). A string field tagged secret:"true" is redacted by
// Redacted when non-empty; one tagged secret:"url" has only the password
// of the URL it holds redacted.
type Config struct {
	// DataDir holds the SQLite database, the master key and other local
	// state unless configured elsewhere.
	DataDir    string     `yaml:"data_dir"`
	Log        Log        `yaml:"log"`
	HTTP       HTTP       `yaml:"http"`
	Database   Database   `yaml:"database"`
	Vault      Vault      `yaml:"vault"`
	Queue      Queue      `yaml:"queue"`
	Console    Console    `yaml:"console"`
	Portal     Portal     `yaml:"portal"`
	Delivery   Delivery   `yaml:"delivery"`
	DNS        DNS        `yaml:"dns"`
	Submission Submission `yaml:"submission"`
	Bounce     Bounce     `yaml:"bounce"`
	Webhooks   Webhooks   `yaml:"webhooks"`
	SecureLine SecureLine `yaml:"secureline"`
	Bootstrap  Bootstrap  `yaml:"bootstrap"`
}

// SecureLine configures per-recipient encryption; here, what uploaded
// S/MIME certificates are validated against (docs/keys.md).
type SecureLine struct {
	// SMIMETrustFile is a PEM bundle of the trust anchors S/MIME
	// certificates must chain to; empty means none, and every S/MIME
	// certificate is refused as untrusted.
	SMIMETrustFile string `yaml:"smime_trust_file"`
	// SMIMECRLFile holds PEM (or one DER) certificate revocation lists
	// consulted when validating S/MIME certificates; empty means none.
	SMIMECRLFile string `yaml:"smime_crl_file"`
	// WKDTimeout bounds one Web Key Directory lookup, both methods
	// (docs/keys.md); only accounts with wkd_enabled look keys up.
	WKDTimeout time.Duration `yaml:"wkd_timeout"`
	// WKDCAFile holds extra PEM trust anchors for directory hosts, added
	// to the system's; empty: the system's only.
	WKDCAFile string `yaml:"wkd_ca_file"`
	// WKDPort is the HTTPS port of directory hosts (443; other values
	// are for tests).
	WKDPort int `yaml:"wkd_port"`
	// WKDAllowPrivateNetworks lets lookups reach loopback, private and
	// link-local addresses (development and tests).
	WKDAllowPrivateNetworks bool `yaml:"wkd_allow_private_networks"`
}

// Delivery configures outbound mail delivery.
type Delivery struct {
	// HeloName is the host name given in EHLO; empty means the machine's
	// host name.
	HeloName string `yaml:"helo_name"`
	// Routes sends domains to fixed hosts instead of their MX:
	// "example.org=host:port,*=host:port" ("*" matches every domain, a
	// smarthost).
	Routes string `yaml:"routes"`
	// TLSPolicy is opportunistic or required.
	TLSPolicy string `yaml:"tls_policy"`
	// TLSCAFile holds extra PEM trust anchors for verifying remote MTAs.
	TLSCAFile string `yaml:"tls_ca_file"`
	// Lifetime is how long a recipient is retried before it bounces.
	Lifetime time.Duration `yaml:"lifetime"`
	// MaxConnsPerDomain bounds parallel connections to one domain.
	MaxConnsPerDomain int `yaml:"max_conns_per_domain"`
	// MessagesPerConn bounds the messages one connection carries.
	MessagesPerConn int `yaml:"messages_per_conn"`
	// MaxConns bounds the node's open SMTP connections in all; 0 means
	// no cap.
	MaxConns int `yaml:"max_conns"`
	// DomainRate limits messages per destination domain and node:
	// "50/s,gmail.com=20/s,example.org=600/m" (a bare rate, or "*=",
	// applies to every domain without its own); empty means no limit.
	DomainRate string `yaml:"domain_rate"`
	// MTASTS applies destination domains' MTA-STS policies (RFC 8461).
	MTASTS bool `yaml:"mta_sts"`
	// MTASTSPort is the HTTPS port policies are fetched from (443; other
	// values are for tests).
	MTASTSPort int `yaml:"mta_sts_port"`
	// Smarthost, "host:port", relays all mail through one server
	// instead of MX hosts, always over verified TLS.
	Smarthost string `yaml:"smarthost"`
	// SmarthostTLS is starttls or implicit.
	SmarthostTLS string `yaml:"smarthost_tls"`
	// SmarthostUsername and SmarthostPassword authenticate to the
	// smarthost (AUTH PLAIN or LOGIN) when set.
	SmarthostUsername string `yaml:"smarthost_username"`
	SmarthostPassword string `yaml:"smarthost_password" secret:"true"`
}

// Webhooks configures the delivery of message events to customers'
// endpoints (docs/webhooks.md).
type Webhooks struct {
	// AllowHTTP permits http:// endpoint URLs (development and tests).
	AllowHTTP bool `yaml:"allow_http"`
	// AllowPrivateNetworks permits endpoints in loopback, private and
	// link-local ranges (development and tests).
	AllowPrivateNetworks bool `yaml:"allow_private_networks"`
	// Timeout bounds one POST.
	Timeout time.Duration `yaml:"timeout"`
	// PollInterval is how often the dispatcher looks for new events.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RetryWindow is how long an event is retried before it fails.
	RetryWindow time.Duration `yaml:"retry_window"`
	// MaxAttempts bounds the attempts of one event.
	MaxAttempts int `yaml:"max_attempts"`
}

// Submission configures the SMTP relay for applications.
type Submission struct {
	// Addr is the submission listener (STARTTLS, port 587); "off"
	// disables it.
	Addr string `yaml:"addr"`
	// TLSAddr is the implicit-TLS listener (port 465); "off" disables it.
	TLSAddr string `yaml:"tls_addr"`
	// RatePerMinute bounds the messages one API client relays a minute.
	RatePerMinute int `yaml:"rate_per_minute"`
}

// Bounce configures signed return paths and the listener for
// asynchronous bounces and complaints (docs/bounces.md).
type Bounce struct {
	// Domain is the bounce domain: delivered mail's envelope sender
	// becomes b+<token>@Domain. Empty keeps the From address.
	Domain string `yaml:"domain"`
	// Addr is the SMTP listener receiving mail for the bounce domain
	// (the host its MX points at, port 25); "off" disables it.
	Addr string `yaml:"addr"`
}

// DNS configures the resolver of delivery and domain verification.
type DNS struct {
	// Servers are "host:port" DNS servers, comma-separated; empty means
	// the system's resolver.
	Servers string `yaml:"servers"`
}

// Console configures the web console's sign-in sessions.
type Console struct {
	// IdleTimeout ends a session that made no request for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after sign-in, however
	// active.
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
}

// Portal configures the recipient portal (its links start with
// http.public_url).
type Portal struct {
	// CodeTTL is how long a one-time code works.
	CodeTTL time.Duration `yaml:"code_ttl"`
	// MaxCodeAttempts wrong codes in a row lock a link for Lockout.
	MaxCodeAttempts int           `yaml:"max_code_attempts"`
	Lockout         time.Duration `yaml:"lockout"`
	// IdleTimeout signs a recipient out after this long without a request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a recipient's session this long after sign-in.
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
}

// Log configures the process log.
type Log struct {
	// Level is the minimum level logged: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (one object per line) or text (logfmt-like).
	Format string `yaml:"format"`
}

// HTTP configures the HTTP listener that serves the API, console, portal,
// metrics and health endpoints.
type HTTP struct {
	// Addr is the host:port to listen on.
	Addr string `yaml:"addr"`
	// PublicURL is the absolute URL users reach this service at (behind a
	// proxy, say); empty means derived from the request.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies lists, comma-separated, the CIDR prefixes of reverse
	// proxies whose X-Forwarded-For is believed; empty trusts none.
	TrustedProxies string `yaml:"trusted_proxies"`
	// MaxBodyBytes caps a request body.
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout bounds the drain of requests and jobs on stop.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	TLS             TLS           `yaml:"tls"`
}

// TLS configures HTTPS on the HTTP listener. With no certificate and Dev
// false the listener speaks plain HTTP (for use behind a TLS proxy).
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Dev serves a self-signed certificate kept in the data directory; for
	// development only.
	Dev bool `yaml:"dev"`
}

// Database configures the store.
type Database struct {
	// URL is "sqlite:PATH" or "postgres://..." ("postgresql://...");
	// empty means SQLite in the data directory (see Config.DatabaseURL).
	URL string `yaml:"url" secret:"url"`
	// MaxConns is the PostgreSQL connection pool size.
	MaxConns int `yaml:"max_conns"`
	// SQLiteReaders is the number of SQLite read connections (there is
	// always exactly one writer).
	SQLiteReaders int `yaml:"sqlite_readers"`
	// BusyTimeout is how long SQLite waits on a locked database.
	BusyTimeout time.Duration `yaml:"busy_timeout"`
}

// Vault configures encryption at rest.
type Vault struct {
	// MasterKeyFile holds the master key that wraps account data keys;
	// empty means master.key in the data directory (see
	// Config.MasterKeyFile).
	MasterKeyFile string `yaml:"master_key_file"`
}

// Queue configures the durable job queue.
type Queue struct {
	MaxWorkers   int           `yaml:"max_workers"`
	PollInterval time.Duration `yaml:"poll_interval"`
	JobTimeout   time.Duration `yaml:"job_timeout"`
}

// Bootstrap names the first account, created when the store is empty.
type Bootstrap struct {
	AccountName string `yaml:"account_name"`
	OwnerEmail  string `yaml:"owner_email"`
}

// Byte-size units accepted in size values and used by defaults.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// Default returns the built-in configuration: a single node on SQLite in
// ./data, listening on loopback only. It is valid.
func Default() Config {
	return Config{
		DataDir: "./data",
		Log:     Log{Level: "info", Format: "json"},
		HTTP: HTTP{
			Addr:              "127.0.0.1:8080",
			MaxBodyBytes:      10 * MiB,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   30 * time.Second,
		},
		Database: Database{
			MaxConns:      10,
			SQLiteReaders: 4,
			BusyTimeout:   5 * time.Second,
		},
		Queue: Queue{
			MaxWorkers:   20,
			PollInterval: time.Second,
			JobTimeout:   time.Minute,
		},
		Delivery: Delivery{
			TLSPolicy:         "opportunistic",
			Lifetime:          72 * time.Hour,
			MaxConnsPerDomain: 4,
			MessagesPerConn:   100,
			MaxConns:          500,
			MTASTS:            true,
			MTASTSPort:        443,
			SmarthostTLS:      "starttls",
		},
		Submission: Submission{
			Addr:          "127.0.0.1:587",
			TLSAddr:       "127.0.0.1:465",
			RatePerMinute: 600,
		},
		Bounce: Bounce{Addr: "off"},
		SecureLine: SecureLine{
			WKDTimeout: 5 * time.Second,
			WKDPort:    443,
		},
		Webhooks: Webhooks{
			Timeout:      10 * time.Second,
			PollInterval: 2 * time.Second,
			RetryWindow:  24 * time.Hour,
			MaxAttempts:  30,
		},
		Console: Console{
			IdleTimeout:     15 * time.Minute,
			AbsoluteTimeout: 12 * time.Hour,
		},
		Portal: Portal{
			CodeTTL:         10 * time.Minute,
			MaxCodeAttempts: 5,
			Lockout:         15 * time.Minute,
			IdleTimeout:     15 * time.Minute,
			AbsoluteTimeout: time.Hour,
		},
		Bootstrap: Bootstrap{
			AccountName: "Sealpost",
			OwnerEmail:  "owner@example.com",
		},
	}
}

// DatabaseURL returns database.url, or when it is empty the SQLite
// database sealpost.db in the data directory ("sqlite://data/sealpost.db").
func (c Config) DatabaseURL() string {
	if c.Database.URL != "" {
		return c.Database.URL
	}
	return "sqlite://" + filepath.Join(c.DataDir, "sealpost.db")
}

// MasterKeyFile returns vault.master_key_file, or when it is empty
// master.key in the data directory.
func (c Config) MasterKeyFile() string {
	if c.Vault.MasterKeyFile != "" {
		return c.Vault.MasterKeyFile
	}
	return filepath.Join(c.DataDir, "master.key")
}

// Proxies parses TrustedProxies; a bare address is a single-host prefix.
// Errors name the entry's position, not its text.
func (h HTTP) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, f := range strings.Split(h.TrustedProxies, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(f)
		if err != nil {
			addr, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("entry %d is not a CIDR prefix or an IP address", i+1)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// ParsedRoutes parses Delivery.Routes ("domain=host:port,...").
func (d Delivery) ParsedRoutes() (map[string]string, error) {
	out := map[string]string{}
	for i, f := range strings.Split(d.Routes, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		domain, addr, ok := strings.Cut(f, "=")
		domain = strings.ToLower(strings.TrimSpace(domain))
		if _, _, err := net.SplitHostPort(strings.TrimSpace(addr)); !ok || domain == "" || err != nil {
			return nil, fmt.Errorf("entry %d must be domain=host:port", i+1)
		}
		out[domain] = strings.TrimSpace(addr)
	}
	return out, nil
}

// Rate is a number of messages per period.
type Rate struct {
	N   int
	Per time.Duration
}

// ParsedDomainRate parses Delivery.DomainRate ("50/s,gmail.com=20/s"):
// each entry is [domain=]N/s, N/m or N/h; an entry without a domain (or
// "*=") is the default for every domain. Empty means no limit.
func (d Delivery) ParsedDomainRate() (map[string]Rate, error) {
	out := map[string]Rate{}
	for i, f := range strings.Split(d.DomainRate, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		domain, rate, ok := strings.Cut(f, "=")
		if !ok {
			domain, rate = "*", f
		}
		domain = strings.ToLower(strings.TrimSpace(domain))
		n, unit, ok := strings.Cut(strings.TrimSpace(rate), "/")
		count, err := strconv.Atoi(strings.TrimSpace(n))
		per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[strings.TrimSpace(unit)]
		if !ok || err != nil || count < 1 || per == 0 || domain == "" {
			return nil, fmt.Errorf("entry %d must be [domain=]N/s, N/m or N/h with N at least 1", i+1)
		}
		if _, dup := out[domain]; dup {
			return nil, fmt.Errorf("entry %d: %s is given twice", i+1, domain)
		}
		out[domain] = Rate{N: count, Per: per}
	}
	return out, nil
}

// ServerList splits DNS.Servers; a server without a port gets 53.
func (d DNS) ServerList() ([]string, error) {
	var out []string
	for i, f := range strings.Split(d.Servers, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(f); err != nil {
			if net.ParseIP(f) == nil {
				return nil, fmt.Errorf("entry %d must be host:port or an IP address", i+1)
			}
			f = net.JoinHostPort(f, "53")
		}
		out = append(out, f)
	}
	return out, nil
}

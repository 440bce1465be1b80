package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateNamesEachBadKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		set  map[string]string
		key  string
	}{
		{"empty data dir", map[string]string{"data_dir": ""}, "data_dir"},
		{"unknown log level", map[string]string{"log.level": "verbose"}, "log.level"},
		{"log level is lower-case", map[string]string{"log.level": "INFO"}, "log.level"},
		{"unknown log format", map[string]string{"log.format": "xml"}, "log.format"},
		{"addr without port", map[string]string{"http.addr": "localhost"}, "http.addr"},
		{"addr with named port", map[string]string{"http.addr": "localhost:http"}, "http.addr"},
		{"addr port out of range", map[string]string{"http.addr": ":70000"}, "http.addr"},
		{"relative public url", map[string]string{"http.public_url": "mail.example.org"}, "http.public_url"},
		{"public url with query", map[string]string{"http.public_url": "https://mail.example.org/?a=b"}, "http.public_url"},
		{"public url not http", map[string]string{"http.public_url": "ftp://mail.example.org"}, "http.public_url"},
		{"trusted proxy not a prefix", map[string]string{"http.trusted_proxies": "10.0.0.0/8, proxy.internal"}, "http.trusted_proxies"},
		{"body limit under 1KiB", map[string]string{"http.max_body_bytes": "1023"}, "http.max_body_bytes"},
		{"body limit over 1GiB", map[string]string{"http.max_body_bytes": "1025MiB"}, "http.max_body_bytes"},
		{"zero read header timeout", map[string]string{"http.read_header_timeout": "0s"}, "http.read_header_timeout"},
		{"negative read timeout", map[string]string{"http.read_timeout": "-1s"}, "http.read_timeout"},
		{"zero write timeout", map[string]string{"http.write_timeout": "0"}, "http.write_timeout"},
		{"zero idle timeout", map[string]string{"http.idle_timeout": "0"}, "http.idle_timeout"},
		{"zero shutdown timeout", map[string]string{"http.shutdown_timeout": "0"}, "http.shutdown_timeout"},
		{"cert without key", map[string]string{"http.tls.cert_file": "/c.pem"}, "http.tls.key_file"},
		{"key without cert", map[string]string{"http.tls.key_file": "/k.pem"}, "http.tls.cert_file"},
		{"dev TLS with cert files", map[string]string{"http.tls.dev": "true", "http.tls.cert_file": "/c", "http.tls.key_file": "/k"}, "http.tls.dev"},
		{"unknown database scheme", map[string]string{"database.url": "mysql://root@db/x"}, "database.url"},
		{"sqlite without path", map[string]string{"database.url": "sqlite:"}, "database.url"},
		{"sqlite url without path", map[string]string{"database.url": "sqlite://"}, "database.url"},
		{"bad postgres url", map[string]string{"database.url": "postgres://db:port/x"}, "database.url"},
		{"zero pool", map[string]string{"database.max_conns": "0"}, "database.max_conns"},
		{"zero sqlite readers", map[string]string{"database.sqlite_readers": "0"}, "database.sqlite_readers"},
		{"zero busy timeout", map[string]string{"database.busy_timeout": "0"}, "database.busy_timeout"},
		{"zero workers", map[string]string{"queue.max_workers": "0"}, "queue.max_workers"},
		{"zero poll interval", map[string]string{"queue.poll_interval": "0"}, "queue.poll_interval"},
		{"zero job timeout", map[string]string{"queue.job_timeout": "0"}, "queue.job_timeout"},
		{"blank account name", map[string]string{"bootstrap.account_name": "  "}, "bootstrap.account_name"},
		{"owner email not an address", map[string]string{"bootstrap.owner_email": "owner"}, "bootstrap.owner_email"},
		{"owner email with display name", map[string]string{"bootstrap.owner_email": "Owner <o@example.org>"}, "bootstrap.owner_email"},
		{"bounce domain not a domain", map[string]string{"bounce.domain": "b@clinic.example"}, "bounce.domain"},
		{"bounce domain of one label", map[string]string{"bounce.domain": "bounces"}, "bounce.domain"},
		{"bounce listener without a domain", map[string]string{"bounce.addr": "127.0.0.1:2525"}, "bounce.addr"},
		{"bounce listener without a port", map[string]string{"bounce.addr": "mx", "bounce.domain": "bounces.clinic.example"}, "bounce.addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			for k, v := range tc.set {
				if err := c.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			err := c.Validate()
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if len(verr.Problems) != 1 || verr.Problems[0].Key != tc.key {
				t.Fatalf("problems %+v, want exactly one for %s", verr.Problems, tc.key)
			}
			if !strings.Contains(err.Error(), tc.key+": ") {
				t.Fatalf("message %q does not name %s", err, tc.key)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		set  map[string]string
	}{
		{"all interfaces", map[string]string{"http.addr": ":8080"}},
		{"IPv6 loopback", map[string]string{"http.addr": "[::1]:8443"}},
		{"ephemeral port", map[string]string{"http.addr": "127.0.0.1:0"}},
		{"public url", map[string]string{"http.public_url": "https://mail.example.org/sealpost"}},
		{"body limits at the bounds", map[string]string{"http.max_body_bytes": "1KiB"}},
		{"body limit at 1GiB", map[string]string{"http.max_body_bytes": "1GiB"}},
		{"sqlite path", map[string]string{"database.url": "sqlite:/var/lib/sealpost/sealpost.db"}},
		{"sqlite url", map[string]string{"database.url": "sqlite:///var/lib/sealpost/sealpost.db"}},
		{"postgres", map[string]string{"database.url": "postgres://app:pw@db:5432/sealpost?sslmode=verify-full"}},
		{"postgresql", map[string]string{"database.url": "postgresql://db/sealpost"}},
		{"cert and key", map[string]string{"http.tls.cert_file": "/c.pem", "http.tls.key_file": "/k.pem"}},
		{"dev TLS", map[string]string{"http.tls.dev": "true"}},
		{"text logs at debug", map[string]string{"log.format": "text", "log.level": "debug"}},
	}
	for _, tc := range cases {
		c := Default()
		for k, v := range tc.set {
			if err := c.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestValidateReportsEveryProblemInKeyOrder(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Queue.MaxWorkers = 0
	c.Log.Level = "loud"
	c.HTTP.Addr = "nowhere"
	var verr *ValidationError
	if !errors.As(c.Validate(), &verr) {
		t.Fatal("want a *ValidationError")
	}
	var keys []string
	for _, p := range verr.Problems {
		keys = append(keys, p.Key)
	}
	if got, want := strings.Join(keys, ","), "log.level,http.addr,queue.max_workers"; got != want {
		t.Fatalf("problem keys %s, want %s", got, want)
	}
}

func TestValidateNeverQuotesTheDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"mysql://root:hunter2@db/x", "postgres://app:hunter2@db:port/x"} {
		c := Default()
		c.Database.URL = u
		err := c.Validate()
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %v", u, err)
		}
	}
}

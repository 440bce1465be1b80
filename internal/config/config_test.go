package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes a config file into a fresh temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sealpost.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// diff lists the keys whose values differ between a and b.
func diff(a, b Config) []string {
	var out []string
	for _, f := range fields() {
		if va, vb := a.formatField(f), b.formatField(f); va != vb {
			out = append(out, f.key+": "+va+" != "+vb)
		}
	}
	return out
}

func wantErrContaining(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(c, Default()); d != nil {
		t.Fatalf("Load with no file and no environment differs from Default: %v", d)
	}
}

func TestDerivedPaths(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DataDir = "/var/lib/sealpost"
	if got, want := c.DatabaseURL(), "sqlite:///var/lib/sealpost/sealpost.db"; got != want {
		t.Errorf("default DatabaseURL = %q, want %q", got, want)
	}
	if got, want := c.MasterKeyFile(), "/var/lib/sealpost/master.key"; got != want {
		t.Errorf("default MasterKeyFile = %q, want %q", got, want)
	}
	if got, want := Default().DatabaseURL(), "sqlite://data/sealpost.db"; got != want {
		t.Errorf("relative data_dir: DatabaseURL = %q, want %q", got, want)
	}
	c.Database.URL = "postgres://db/sealpost"
	c.Vault.MasterKeyFile = "/etc/sealpost/master.key"
	if got := c.DatabaseURL(); got != c.Database.URL {
		t.Errorf("explicit DatabaseURL = %q", got)
	}
	if got := c.MasterKeyFile(); got != c.Vault.MasterKeyFile {
		t.Errorf("explicit MasterKeyFile = %q", got)
	}
}

func TestPrecedenceDefaultsFileEnvFlags(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
data_dir: /from/file
http:
  addr: 10.0.0.1:8000
  read_timeout: 5s
queue:
  max_workers: 7
`)
	env := []string{
		"HOME=/root",
		"SEALPOST_HTTP_ADDR=10.0.0.2:9000",
		"SEALPOST_QUEUE_MAX_WORKERS=8",
	}
	c, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("queue.max_workers", "9"); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"default kept where nothing overrides", c.Log.Level, "info"},
		{"file overrides default", c.DataDir, "/from/file"},
		{"file overrides default (duration)", c.HTTP.ReadTimeout, 5 * time.Second},
		{"env overrides file", c.HTTP.Addr, "10.0.0.2:9000"},
		{"flag overrides env and file", c.Queue.MaxWorkers, 9},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		key   string
		value string
		check func(Config) bool
	}{
		{"string", "data_dir", "/srv/sealpost", func(c Config) bool { return c.DataDir == "/srv/sealpost" }},
		{"nested string", "http.tls.cert_file", "/c.pem", func(c Config) bool { return c.HTTP.TLS.CertFile == "/c.pem" }},
		{"bool", "http.tls.dev", "true", func(c Config) bool { return c.HTTP.TLS.Dev }},
		{"int", "database.max_conns", "25", func(c Config) bool { return c.Database.MaxConns == 25 }},
		{"duration", "queue.job_timeout", "90s", func(c Config) bool { return c.Queue.JobTimeout == 90*time.Second }},
		{"size in bytes", "http.max_body_bytes", "2048", func(c Config) bool { return c.HTTP.MaxBodyBytes == 2048 }},
		{"size with unit", "http.max_body_bytes", "512KiB", func(c Config) bool { return c.HTTP.MaxBodyBytes == 512*KiB }},
		{"empty string clears", "bootstrap.account_name", "", func(c Config) bool { return c.Bootstrap.AccountName == "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			if err := c.Set(tc.key, tc.value); err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("Set(%q, %q) did not take effect", tc.key, tc.value)
			}
		})
	}
}

func TestSetErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key, value string
		want             []string
	}{
		{"unknown key, with a suggestion", "http.adress", "x", []string{`"http.adress"`, `did you mean "http.addr"`}},
		{"section is not a key", "http", "x", []string{`unknown config key "http"`}},
		{"bad duration", "http.read_timeout", "30", []string{"http.read_timeout", `invalid duration "30"`}},
		{"bad bool", "http.tls.dev", "maybe", []string{"http.tls.dev", "invalid boolean"}},
		{"bad int", "queue.max_workers", "lots", []string{"queue.max_workers", "invalid integer"}},
		{"bad size", "http.max_body_bytes", "10 parsecs", []string{"http.max_body_bytes", "invalid size"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			wantErrContaining(t, c.Set(tc.key, tc.value), tc.want...)
			if d := diff(c, Default()); d != nil {
				t.Errorf("a failed Set changed the config: %v", d)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	good := map[string]int64{
		"0": 0, "1024": 1024, "1B": 1, "512KiB": 512 * KiB, "10MiB": 10 * MiB, "10 MiB": 10 * MiB,
		"10mib": 10 * MiB, "1GiB": GiB, "2TiB": 2 << 40, "1KB": 1000, "5MB": 5e6, "1GB": 1e9, " 64KiB ": 64 * KiB,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "10 MiBs", "0x10", "9223372036854775807KiB", "99999999999999999999"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSizeRoundTrips(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 1000: "1000", KiB: "1KiB", 1536 * KiB: "1536KiB", 10 * MiB: "10MiB", GiB: "1GiB"} {
		got := FormatSize(n)
		if got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(got); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestEveryKeyHasOneEnvName(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, f := range fields() {
		if other, dup := seen[f.env]; dup {
			t.Errorf("keys %s and %s share the environment variable %s", other, f.key, f.env)
		}
		seen[f.env] = f.key
		if f.env == EnvConfigFile || strings.HasPrefix(f.env, envTestPrefix) {
			t.Errorf("key %s maps to the reserved variable %s", f.key, f.env)
		}
	}
}

func TestSuggestOnlyLikelyTypos(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"http.adress", "http.addr"},
		{"htp.addr", "http.addr"},
		{"http.tls.cert", "http.tls.cert_file"},
		{"log.levle", "log.level"},
		{"database.max_con", "database.max_conns"},
		{"frobnicate", ""},
		{"http.foo", ""},
		{"queue", ""},
	}
	for _, tc := range cases {
		want := ""
		if tc.want != "" {
			want = ` (did you mean "` + tc.want + `"?)`
		}
		if got := suggest(tc.in, Keys()); got != want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

// FuzzParseSize checks ParseSize never panics, never returns a negative
// size, and that FormatSize reads back.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "10MiB", "1 kb", "9223372036854775807", "8589934592GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Fatalf("FormatSize(%d) = %q reads back as %d, %v", n, FormatSize(n), back, err)
		}
	})
}

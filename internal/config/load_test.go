package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFileErrorsNameFileLineAndKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		content string
		want    []string
	}{
		{
			"unknown nested key, with its line",
			"data_dir: ./data\nlog:\n  level: info\n\n\nhttp:\n  adress: 127.0.0.1:1\n",
			[]string{"line 7", `unknown key "http.adress"`, `did you mean "http.addr"`},
		},
		{"unknown top-level key", "data_dir: x\nfrobnicate: 1\n", []string{"line 2", `unknown key "frobnicate"`}},
		{"unknown key two levels down", "http:\n  tls:\n    cert: x\n", []string{"line 3", `unknown key "http.tls.cert"`}},
		{"bad duration", "queue:\n  poll_interval: soon\n", []string{"line 2", "queue.poll_interval", "invalid duration"}},
		{"bad bool", "http:\n  tls:\n    dev: sometimes\n", []string{"line 3", "http.tls.dev", "invalid boolean"}},
		{"bad int", "database:\n  max_conns: 1.5\n", []string{"line 2", "database.max_conns", "invalid integer"}},
		{"list where a value belongs", "http:\n  addr: [a, b]\n", []string{"line 2", "http.addr", "not a list"}},
		{"mapping where a value belongs", "data_dir:\n  x: y\n", []string{"line 2", "data_dir", "not a mapping"}},
		{"value where a section belongs", "http: 8080\n", []string{"line 1", `key "http" wants a mapping`}},
		{"top level is not a mapping", "- a\n- b\n", []string{"line 1", "top level wants a mapping"}},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", []string{"line 3", `duplicate key "log.level"`}},
		{"second document", "data_dir: a\n---\ndata_dir: b\n", []string{"exactly one YAML document"}},
		{"YAML syntax error", "http:\n  addr: \"unterminated\n", []string{"sealpost.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.content)
			_, err := Load(path, nil)
			wantErrContaining(t, err, append([]string{"config file " + path}, tc.want...)...)
		})
	}
}

func TestLoadMissingFileFails(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	wantErrContaining(t, err, "nope.yaml")
}

func TestLoadFileForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		content string
		check   func(Config) bool
	}{
		{"empty file keeps defaults", "", func(c Config) bool { return len(diff(c, Default())) == 0 }},
		{"comments only keep defaults", "# nothing\n", func(c Config) bool { return len(diff(c, Default())) == 0 }},
		{"empty section keeps defaults", "http:\n", func(c Config) bool { return len(diff(c, Default())) == 0 }},
		{"null string is empty", "bootstrap:\n  account_name: ~\n", func(c Config) bool { return c.Bootstrap.AccountName == "" }},
		{"quoted duration", "http:\n  idle_timeout: \"90s\"\n", func(c Config) bool { return c.HTTP.IdleTimeout == 90*time.Second }},
		{"size with unit", "http:\n  max_body_bytes: 512KiB\n", func(c Config) bool { return c.HTTP.MaxBodyBytes == 512*KiB }},
		{"size in bytes", "http:\n  max_body_bytes: 2048\n", func(c Config) bool { return c.HTTP.MaxBodyBytes == 2048 }},
		{"number into a string", "bootstrap:\n  account_name: 1234\n", func(c Config) bool { return c.Bootstrap.AccountName == "1234" }},
		{"anchors and aliases", "data_dir: &d /srv/x\nvault:\n  master_key_file: *d\n", func(c Config) bool { return c.Vault.MasterKeyFile == "/srv/x" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(writeFile(t, tc.content), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config after loading %q: %v", tc.content, diff(c, Default()))
			}
		})
	}
}

func TestEnvNamesMapToKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env   string
		check func(Config) bool
	}{
		{"SEALPOST_HTTP_ADDR=:9000", func(c Config) bool { return c.HTTP.Addr == ":9000" }},
		{"SEALPOST_DATA_DIR=/srv", func(c Config) bool { return c.DataDir == "/srv" }},
		{"SEALPOST_DATABASE_URL=postgres://db/x", func(c Config) bool { return c.Database.URL == "postgres://db/x" }},
		{"SEALPOST_HTTP_TLS_CERT_FILE=/c.pem", func(c Config) bool { return c.HTTP.TLS.CertFile == "/c.pem" }},
		{"SEALPOST_HTTP_MAX_BODY_BYTES=1MiB", func(c Config) bool { return c.HTTP.MaxBodyBytes == MiB }},
		{"SEALPOST_DATABASE_SQLITE_READERS=2", func(c Config) bool { return c.Database.SQLiteReaders == 2 }},
		{"SEALPOST_HTTP_TLS_DEV=true", func(c Config) bool { return c.HTTP.TLS.Dev }},
		{"SEALPOST_VAULT_MASTER_KEY_FILE=/k", func(c Config) bool { return c.Vault.MasterKeyFile == "/k" }},
		{"SEALPOST_DATABASE_URL=a=b", func(c Config) bool { return c.Database.URL == "a=b" }},
	}
	for _, tc := range cases {
		c, err := Load("", []string{tc.env})
		if err != nil {
			t.Errorf("%s: %v", tc.env, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("%s did not take effect: %v", tc.env, diff(c, Default()))
		}
	}
}

func TestEveryKeyCanBeSetFromTheEnvironment(t *testing.T) {
	t.Parallel()
	want := Default()
	want.Log.Level = "debug"
	want.HTTP.TLS.Dev = true
	want.HTTP.MaxBodyBytes = 3 * KiB
	want.Queue.JobTimeout = 7 * time.Minute
	want.Database.MaxConns = 3
	var env []string
	for _, f := range fields() {
		env = append(env, f.env+"="+want.formatField(f))
	}
	got, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, want); d != nil {
		t.Fatal(d)
	}
}

func TestEnvIgnoresAndRejects(t *testing.T) {
	t.Parallel()
	ignored := []string{
		"PATH=/usr/bin",
		"SEALPOST_TEST_POSTGRES=postgres://localhost/test",
		"SEALPOST_TEST_ANYTHING_ELSE=1",
		"SEALPOST_CONFIG=/etc/sealpost.yaml",
		"SEALPOSTX=1",
	}
	c, err := Load("", ignored)
	if err != nil {
		t.Fatalf("variables that are not settings: %v", err)
	}
	if d := diff(c, Default()); d != nil {
		t.Fatalf("ignored variables changed the config: %v", d)
	}

	cases := []struct {
		name string
		env  string
		want []string
	}{
		{"unknown variable, with a suggestion", "SEALPOST_HTTP_ADRESS=x", []string{"SEALPOST_HTTP_ADRESS", `did you mean "SEALPOST_HTTP_ADDR"`}},
		{"a section is not a variable", "SEALPOST_HTTP=x", []string{"unknown environment variable SEALPOST_HTTP"}},
		{"a prefix of SEALPOST_CONFIG is not special", "SEALPOST_CONFIG_FILE=x", []string{"SEALPOST_CONFIG_FILE"}},
		{"variable names are case-sensitive", "SEALPOST_http_addr=x", []string{"SEALPOST_http_addr"}},
		{"bad value names variable and key", "SEALPOST_QUEUE_POLL_INTERVAL=fast", []string{"SEALPOST_QUEUE_POLL_INTERVAL", "queue.poll_interval", "invalid duration"}},
	}
	for _, tc := range cases {
		_, err := Load("", []string{tc.env})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, w)
			}
		}
	}
}

func TestLaterEnvEntryWins(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"SEALPOST_DATA_DIR=/a", "SEALPOST_DATA_DIR=/b"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/b" {
		t.Fatalf("data_dir = %q, want /b", c.DataDir)
	}
}

// FuzzDecodeYAML checks the file decoder never panics and that whatever
// it accepts prints and reloads to the same configuration.
func FuzzDecodeYAML(f *testing.F) {
	f.Add([]byte("http:\n  addr: :1\n  max_body_bytes: 1MiB\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Add([]byte("log: {level: debug}\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if _, err := c.decodeYAML("fuzz.yaml", data); err != nil {
			return
		}
		out, err := c.YAML()
		if err != nil {
			t.Fatal(err)
		}
		back := Default()
		if _, err := back.decodeYAML("printed.yaml", out); err != nil {
			t.Fatalf("printed config does not reload: %v\n%s", err, out)
		}
		if d := diff(back, c); d != nil {
			t.Fatalf("round trip changed %v", d)
		}
	})
}

package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRedactedDatabaseURL(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"", ""},
		{"sqlite:/var/lib/sealpost/sealpost.db", "sqlite:/var/lib/sealpost/sealpost.db"},
		{"postgres://db/sealpost", "postgres://db/sealpost"},
		{"postgres://app@db/sealpost", "postgres://app@db/sealpost"},
		{"postgres://app:@db/sealpost", "postgres://app:@db/sealpost"},
		{"postgres://user:secret@host", "postgres://user:[redacted]@host"},
		{"postgresql://app:s3cr%40t@db:5432/sealpost?sslmode=verify-full", "postgresql://app:[redacted]@db:5432/sealpost?sslmode=verify-full"},
		{"postgres://app:p@ss@db/x", "postgres://app:[redacted]@db/x"},
		{"postgres://db/x?sslmode=require&password=secret", "postgres://db/x?sslmode=require&password=[redacted]"},
		{"postgres://db/x?sslpassword=secret#frag", "postgres://db/x?sslpassword=[redacted]#frag"},
		{"postgres://db1:5432,db2:5432/x?PassWord=secret", "postgres://db1:5432,db2:5432/x?PassWord=[redacted]"},
	}
	for _, tc := range cases {
		c := Default()
		c.Database.URL = tc.in
		if got := c.Redacted().Database.URL; got != tc.want {
			t.Errorf("redact %q = %q, want %q", tc.in, got, tc.want)
		}
		if c.Database.URL != tc.in {
			t.Errorf("Redacted modified its receiver")
		}
	}
}

func TestSecretTagRedactsNonEmptyValues(t *testing.T) {
	t.Parallel()
	type sample struct {
		Token string `yaml:"token" secret:"true"`
		Unset string `yaml:"unset" secret:"true"`
		DSN   string `yaml:"dsn" secret:"url"`
		Plain string `yaml:"plain"`
	}
	var fs []field
	collectFields(reflect.TypeFor[sample](), "", nil, &fs)
	s := sample{Token: "tok", DSN: "postgres://u:p@h/d", Plain: "visible"}
	redact(reflect.ValueOf(&s).Elem(), fs)
	want := sample{Token: "[redacted]", DSN: "postgres://u:[redacted]@h/d", Plain: "visible"}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
}

func TestPrintedConfigHidesPasswords(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Database.URL = "postgres://app:hunter2secret@db.internal:5432/sealpost"
	out, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2secret") || !strings.Contains(string(out), "app:[redacted]@db.internal") {
		t.Fatalf("printed:\n%s", out)
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DataDir = "/srv/sealpost data"
	c.Log.Format = "text"
	c.HTTP.PublicURL = "https://mail.example.org"
	c.HTTP.MaxBodyBytes = 1536*KiB + 1
	c.HTTP.ReadTimeout = 90 * time.Minute
	c.HTTP.TLS.Dev = true
	c.Database.URL = "postgres://app:[redacted]@db/x"
	c.Database.BusyTimeout = 1500 * time.Millisecond
	c.Vault.MasterKeyFile = "#not a comment"
	c.Bootstrap.AccountName = "true"
	c.Queue.MaxWorkers = 1
	for name, cfg := range map[string]Config{"defaults": Default(), "changed": c} {
		out, err := cfg.YAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Load(writeFile(t, string(out)), nil)
		if err != nil {
			t.Fatalf("%s: reload: %v\n%s", name, err, out)
		}
		if d := diff(back, cfg); d != nil {
			t.Errorf("%s: round trip changed %v\n%s", name, d, out)
		}
	}
}

func TestYAMLIsReadable(t *testing.T) {
	t.Parallel()
	out, err := Default().YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nhttp:\n  addr: 127.0.0.1:8080\n",
		"max_body_bytes: 10485760 # 10MiB\n",
		"    dev: false\n",
		"job_timeout: 1m\n",
		"idle_timeout: 2m\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("YAML lacks %q:\n%s", want, out)
		}
	}
}

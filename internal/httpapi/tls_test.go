package httpapi

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestDevCertificateIsCreatedOnceAndReused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cert, key, err := DevCertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key mode %v, want 0600", perm)
	}
	first, _ := os.ReadFile(cert)
	firstKey, _ := os.ReadFile(key)

	cert2, key2, err := DevCertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(cert2)
	secondKey, _ := os.ReadFile(key2)
	if cert2 != cert || key2 != key || !bytes.Equal(first, second) || !bytes.Equal(firstKey, secondKey) {
		t.Error("the second call made a new certificate")
	}
}

func TestDevCertificateReplacesABrokenOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, _, err := DevCertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, key, err := DevCertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		t.Errorf("replacement does not load: %v", err)
	}
}

func TestTLSConfigReportsMissingFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := TLSConfig(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")); err == nil {
		t.Error("missing files accepted")
	}
}

// Serve with the development certificate: clients that verify it and
// speak TLS 1.2 or 1.3 get in (and see HSTS); a client stuck at TLS 1.1
// is refused (RFC 8996).
func TestServingWithTheDevCertificate(t *testing.T) {
	t.Parallel()
	cert, key, err := DevCertificate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := TLSConfig(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if conf.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", conf.MinVersion)
	}
	ts := httptest.NewUnstartedServer(New(Options{TLS: true}).Handler())
	ts.TLS = conf
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	ts.StartTLS()
	t.Cleanup(ts.Close)

	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("certificate does not parse")
	}

	cases := []struct {
		name       string
		min, max   uint16
		serverName string
		ok         bool
	}{
		{"TLS 1.2 by IP", tls.VersionTLS12, tls.VersionTLS12, "", true},
		{"TLS 1.3 by IP", tls.VersionTLS13, tls.VersionTLS13, "", true},
		{"by the name localhost", tls.VersionTLS12, 0, "localhost", true},
		{"TLS 1.1 at most is refused", tls.VersionTLS10, tls.VersionTLS11, "", false},
		{"another host name is refused", tls.VersionTLS12, 0, "example.com", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs:    roots,
				MinVersion: tc.min,
				MaxVersion: tc.max,
				ServerName: tc.serverName,
			}}}
			t.Cleanup(client.CloseIdleConnections)
			res, err := client.Get(ts.URL + "/healthz")
			if !tc.ok {
				if err == nil {
					res.Body.Close()
					t.Fatalf("connected with TLS %x", res.TLS.Version)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Header.Get("Strict-Transport-Security") == "" {
				t.Errorf("status %d, HSTS %q", res.StatusCode, res.Header.Get("Strict-Transport-Security"))
			}
			if res.TLS.Version < tls.VersionTLS12 {
				t.Errorf("negotiated TLS %x", res.TLS.Version)
			}
		})
	}
}

package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/api/apitest"
	"github.com/sealpost/sealpost/internal/cli"
)

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = cli.Run(context.Background(), cli.Env{Args: args, Environ: environ, Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// startServe runs `sealpost serve` in-process until the test ends and
// returns its base URL and captured stdout.
func startServe(t *testing.T, environ []string, args ...string) (base string, stdout *syncBuffer, stop func() int) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	stdout = &syncBuffer{}
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, cli.Env{
			Args:    append([]string{"serve", "--http-addr", addr}, args...),
			Environ: environ, Stdout: stdout, Stderr: stderr,
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Sealpost is up") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d early\nstdout: %s\nstderr: %s", code, stdout, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start\nstderr: %s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("serve did not shut down")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return "http://" + addr, stdout, stop
}

var credLine = regexp.MustCompile(`(?m)^(owner_email|owner_password|client_id|client_secret|account_id): (\S+)$`)

func parseCreds(out string) map[string]string {
	m := map[string]string{}
	for _, g := range credLine.FindAllStringSubmatch(out, -1) {
		m[g[1]] = g[2]
	}
	return m
}

func TestServeBootstrapsOnceAndServesTheAPI(t *testing.T) {
	dir := t.TempDir()
	env := []string{"SEALPOST_DATA_DIR=" + dir}
	base, out, stop := startServe(t, env)
	creds := parseCreds(out.String())
	for _, k := range []string{"owner_email", "owner_password", "client_id", "client_secret"} {
		if creds[k] == "" {
			t.Fatalf("bootstrap output lacks %s:\n%s", k, out)
		}
	}
	saved, err := filepath.Glob(filepath.Join(dir, "bootstrap-credentials-*.txt"))
	if err != nil || len(saved) != 1 {
		t.Fatalf("credentials file: %v %v", saved, err)
	}
	if st, _ := os.Stat(saved[0]); st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v", st.Mode().Perm())
	}

	contract, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	// get fetches path and checks any answer of a documented operation
	// against the published contract: the real server, real data.
	get := func(path string, key string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, "/v1/") {
			if err := contract.Check(req, resp.StatusCode, resp.Header, body); err != nil {
				t.Errorf("GET %s -> %d breaks the contract: %v", path, resp.StatusCode, err)
			}
		}
		return resp, body
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/openapi.json", "/docs"} {
		if resp, body := get(p, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
	}
	resp, body := get("/v1/audit-events", "")
	if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unauthenticated: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, body = get("/v1/audit-events", creds["client_id"]+":"+creds["client_secret"])
	if resp.StatusCode != 200 {
		t.Fatalf("audit events: %d %s", resp.StatusCode, body)
	}
	var page struct {
		Data []struct {
			Action string `json:"action"`
			Seq    int64  `json:"seq"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range page.Data {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); got != "account.created,user.created,client.created" {
		t.Fatalf("bootstrap audit trail: %s", got)
	}
	// Cursor pagination over the real store, each page checked against the contract.
	key := creds["client_id"] + ":" + creds["client_secret"]
	var paged []string
	next := "/v1/audit-events?limit=2"
	for next != "" {
		resp, body := get(next, key)
		var p struct {
			Data []struct {
				Action string `json:"action"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("page %s: %d %s", next, resp.StatusCode, body)
		}
		for _, e := range p.Data {
			paged = append(paged, e.Action)
		}
		next = ""
		if p.NextCursor != nil {
			next = "/v1/audit-events?limit=2&cursor=" + *p.NextCursor
		}
	}
	if strings.Join(paged, ",") != strings.Join(actions, ",") {
		t.Fatalf("paged listing %v, want %v", paged, actions)
	}
	if resp, _ := get("/v1/audit-events?cursor=garbage", key); resp.StatusCode != 400 {
		t.Fatalf("bad cursor: %d", resp.StatusCode)
	}
	if strings.Contains(string(body), creds["client_secret"]) || strings.Contains(string(body), creds["owner_password"]) {
		t.Fatal("audit events leak a secret")
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exit code %d after graceful shutdown", code)
	}

	// A second start on the same data does not bootstrap again, and the
	// chain still verifies.
	_, out2, stop2 := startServe(t, env)
	if strings.Contains(out2.String(), "client_secret:") {
		t.Fatal("second start bootstrapped again")
	}
	stop2()
	code, vout, verr := run(t, env, "audit", "verify")
	if code != 0 {
		t.Fatalf("audit verify: %d %s %s", code, vout, verr)
	}
}

func TestBadConfigStopsTheStartNamingTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "sealpost.yaml")
	if err := os.WriteFile(file, []byte("http:\n  adress: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		env     []string
		args    []string
		wantErr string
	}{
		{"unknown file key", nil, []string{"serve", "--config", file, "--data-dir", dir}, "http.adress"},
		{"unknown env var", []string{"SEALPOST_HTTP_ADRESS=x"}, []string{"serve", "--data-dir", dir}, "SEALPOST_HTTP_ADRESS"},
		{"bad addr", nil, []string{"serve", "--data-dir", dir, "--http-addr", "nonsense"}, "http.addr"},
		{"bad set key", nil, []string{"config", "print", "--set", "nope=1"}, "nope"},
	}
	for _, c := range cases {
		code, _, stderr := run(t, c.env, c.args...)
		if code == 0 || !strings.Contains(stderr, c.wantErr) {
			t.Errorf("%s: exit %d, stderr %q; want failure naming %q", c.name, code, stderr, c.wantErr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sealpost.db")); err == nil {
		t.Error("a failed start created the database")
	}
}

func TestMissingMasterKeyWithExistingDataStopsTheStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"SEALPOST_DATA_DIR=" + dir}
	if code, out, errOut := run(t, env, "admin", "bootstrap"); code != 0 {
		t.Fatalf("bootstrap: %d %s %s", code, out, errOut)
	}
	// The bootstrapped account has a wrapped data key; now lose the master key.
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, env, "admin", "bootstrap", "--force")
	if code == 0 || !strings.Contains(stderr, "master key") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key")); err == nil {
		t.Fatal("a new master key was created over existing data")
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"migrate", "--help"}, {"admin", "--help"}, {"admin", "bootstrap", "--help"},
		{"config", "--help"}, {"config", "print", "--help"}, {"audit", "--help"}, {"audit", "verify", "--help"},
		{"bench", "--help"}, {"version", "--help"},
	} {
		code, out, _ := run(t, nil, args...)
		if code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
	if code, _, _ := run(t, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestConfigPrintRedactsSecrets(t *testing.T) {
	t.Parallel()
	env := []string{"SEALPOST_DATABASE_URL=postgres://app:hunter2secret@db.internal:5432/sealpost"}
	code, out, errOut := run(t, env, "config", "print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "hunter2secret") || !strings.Contains(out, "db.internal") {
		t.Fatalf("config print: %s", out)
	}
}

func TestVersionPrintsInventory(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "sealpost ") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestDevTLSServesHTTPSWithTLS12Minimum(t *testing.T) {
	dir := t.TempDir()
	base, _, stop := startServe(t, []string{"SEALPOST_DATA_DIR=" + dir}, "--dev-tls", "--no-bootstrap")
	defer stop()
	host := strings.TrimPrefix(base, "http://")
	pemBytes, err := os.ReadFile(filepath.Join(dir, "dev-tls-cert.pem"))
	if err != nil {
		t.Fatalf("dev certificate not in the data dir: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("dev certificate is not PEM")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + host + "/healthz")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://" + host + "/healthz"); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
}

func TestBenchAuthRunsAgainstTheRealServer(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, nil, "bench", "--sqlite-only", "--duration", "200ms", "--concurrency", "2", "auth")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"auth.none", "auth.api_key", "auth.basic", "auth.bearer", "auth.hmac", "of unauthenticated"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " 0 req ") {
		t.Errorf("a scheme completed no request:\n%s", out)
	}
}

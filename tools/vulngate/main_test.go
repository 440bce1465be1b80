package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A report as govulncheck -format json writes it (trimmed): one vulnerability
// called in the standard library and in golang.org/x/net, one only
// imported, one only required.
const reportJSON = `
{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scanner_version":"v1.9.0","db":"file:///db","db_last_modified":"2026-11-05T23:49:57Z","go_version":"go1.26.8","scan_level":"symbol","scan_mode":"source"}}
{"progress":{"message":"Scanning your code and 12 packages across 3 dependent modules for known vulnerabilities..."}}
{"osv":{"id":"GO-2026-0001","summary":"HTTP/2 crash in net/http"}}
{"osv":{"id":"GO-2026-0002","summary":"imported only"}}
{"osv":{"id":"GO-2026-0003","summary":"required only"}}
{"finding":{"osv":"GO-2026-0003","fixed_version":"v0.60.0","trace":[{"module":"golang.org/x/net","version":"v0.50.0"}]}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8"}]}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http"}]}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Get","receiver":"Header"},{"module":"example.com/m","package":"example.com/m/internal/auth","function":"credentialsFrom","position":{"filename":"internal/auth/authenticate.go","line":78,"column":24}},{"module":"example.com/m","package":"example.com/m/internal/auth","function":"Authenticate","receiver":"*Authenticator","position":{"filename":"internal/auth/authenticate.go","line":51,"column":35}}]}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v0.60.0","trace":[{"module":"golang.org/x/net","version":"v0.50.0","package":"golang.org/x/net/http2","function":"ServeConn","receiver":"*Server"},{"module":"example.com/m","package":"example.com/m","function":"main","position":{"filename":"main.go","line":9,"column":2}}]}}
{"finding":{"osv":"GO-2026-0002","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"os"}]}}
`

func gate(t *testing.T, accept string, args ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	if err := os.WriteFile(report, []byte(reportJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		path := filepath.Join(dir, "accept")
		if err := os.WriteFile(path, []byte(accept), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-accept", path)
	}
	var out, errOut bytes.Buffer
	code := run(append(args, report), strings.NewReader(""), &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestFailsOnReachable(t *testing.T) {
	code, out := gate(t, "")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"govulncheck v1.9.0, go1.26.8, database file:///db (updated 2026-11-05)",
		"reachable vulnerabilities: 2 (0 accepted",
		"NOT ACCEPTED GO-2026-0001 in golang.org/x/net@v0.50.0, fixed in v0.60.0: HTTP/2 crash in net/http",
		"NOT ACCEPTED GO-2026-0001 in stdlib@v1.26.8, fixed in v1.26.9",
		"internal/auth/authenticate.go:51:35: auth.Authenticator.Authenticate → auth.credentialsFrom → http.Header.Get",
		"main.go:9:2: m.main → http2.Server.ServeConn",
		"not reachable: 1 in imported packages, 1 in required modules",
		"FAIL: 2 reachable vulnerabilities not accepted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestAcceptExactVersion(t *testing.T) {
	accept := `# comment

GO-2026-0001 stdlib@go1.26.8 fixed only in a Go release we cannot install
GO-2026-0001 golang.org/x/net@v0.50.0 waiting for the upgrade
GO-2026-0009 stdlib@go1.26.8 an old decision
`
	code, out := gate(t, accept)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{
		"reachable vulnerabilities: 2 (2 accepted",
		"accepted GO-2026-0001 in stdlib@v1.26.8",
		":3): fixed only in a Go release we cannot install",
		"stale accept entry",
		"GO-2026-0009 in stdlib@v1.26.8",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A toolchain upgrade (another version) makes the line lapse.
	code, out = gate(t, "GO-2026-0001 stdlib@go1.26.7 old toolchain\nGO-2026-0001 golang.org/x/net@v0.50.0 x\n")
	if code != 1 || !strings.Contains(out, "NOT ACCEPTED GO-2026-0001 in stdlib@v1.26.8") {
		t.Errorf("exit %d, want 1 with stdlib not accepted:\n%s", code, out)
	}
}

func TestBadInput(t *testing.T) {
	for _, accept := range []string{"GO-2026-0001 stdlib@go1.26.8\n", "GO-2026-0001 stdlib reason\n", "CVE-1 stdlib@go1 reason\n"} {
		if code, out := gate(t, accept); code != 2 {
			t.Errorf("accept %q: exit %d, want 2:\n%s", accept, code, out)
		}
	}
	for _, in := range []string{"", "{\"progress\":{}}\n", "not json", `{"config":{"scan_level":"module"}}`} {
		var out bytes.Buffer
		if code := run(nil, strings.NewReader(in), &out, &out); code != 2 {
			t.Errorf("input %q: exit %d, want 2:\n%s", in, code, out.String())
		}
	}
}

func TestCleanReport(t *testing.T) {
	in := `{"config":{"scanner_version":"v1.9.0","go_version":"go1.27.3","scan_level":"symbol"}}`
	var out bytes.Buffer
	if code := run(nil, strings.NewReader(in), &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "reachable vulnerabilities: 0") {
		t.Errorf("output:\n%s", out.String())
	}
}

package buildinfo

import (
	"bytes"
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionPrecedence(t *testing.T) {
	t.Parallel()
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-02T15:04:05Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	dirty := append(append([]debug.BuildSetting(nil), vcs[:3]...), debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	cases := []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"link-time version wins", "v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}}, "v1.2.3"},
		{"module version next", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs}, "v1.4.0"},
		{"toolchain pseudo-version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260102150405-0123456789ab+dirty"}}, "v0.0.0-20260102150405-0123456789ab+dirty"},
		{"vcs revision and time", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "v0.0.0-20260102150405-0123456789ab"},
		{"vcs modified tree", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: dirty}, "v0.0.0-20260102150405-0123456789ab+dirty"},
		{"vcs revision without time", "", &debug.BuildInfo{Settings: vcs[1:2]}, "devel-0123456789ab"},
		{"nothing known", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"no build info", "", nil, "devel"},
	}
	for _, tc := range cases {
		if got := versionOf(tc.linked, tc.bi); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func testBuildInfo() *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/sealpost/sealpost", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/jackc/pgx/v5", Version: "v5.12.0", Sum: "h1:pgx="},
			{Path: "golang.org/x/crypto", Version: "v0.59.0", Sum: "h1:old=",
				Replace: &debug.Module{Path: "example.org/fork/crypto", Version: "v0.59.1", Sum: "h1:fork="}},
			{Path: "modernc.org/sqlite", Version: "v1.62.0",
				Replace: &debug.Module{Path: "../sqlite"}},
		},
	}
}

func TestModulesShowReplacements(t *testing.T) {
	t.Parallel()
	mods := modulesOf(testBuildInfo())
	if len(mods) != 3 {
		t.Fatalf("got %d modules, want 3", len(mods))
	}
	if m := mods[0]; m.Path != "github.com/jackc/pgx/v5" || m.Version != "v5.12.0" || m.Sum != "h1:pgx=" || m.Replace != nil {
		t.Errorf("plain module: %+v", m)
	}
	if r := mods[1].Replace; r == nil || r.Path != "example.org/fork/crypto" || r.Version != "v0.59.1" || r.Sum != "h1:fork=" {
		t.Errorf("replacement: %+v", r)
	}
}

func TestWriteInventory(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := writeInventory(&b, "v1.2.3", testBuildInfo()); err != nil {
		t.Fatal(err)
	}
	want := "sealpost v1.2.3 (go1.26.8)\n" +
		"github.com/jackc/pgx/v5 v5.12.0\n" +
		"golang.org/x/crypto v0.59.0 => example.org/fork/crypto v0.59.1\n" +
		"modernc.org/sqlite v1.62.0 => ../sqlite\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteInventoryOfThisBinary(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteInventory(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if want := "sealpost " + Version() + " (" + runtime.Version() + ")"; lines[0] != want {
		t.Errorf("header %q, want %q", lines[0], want)
	}
	if got, want := len(lines)-1, len(Modules()); got != want {
		t.Errorf("%d module lines, want %d", got, want)
	}
	for _, l := range lines[1:] {
		if len(strings.Fields(l)) < 2 {
			t.Errorf("module line %q lacks a version", l)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteInventoryReportsWriteErrors(t *testing.T) {
	t.Parallel()
	if err := writeInventory(failingWriter{}, "v1", testBuildInfo()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want the write error", err)
	}
}

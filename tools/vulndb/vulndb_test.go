package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCompareVersions(t *testing.T) {
	// Each list is in ascending order.
	ordered := [][]string{
		{"0.0.0-20180816102801-aaf60122140d", "0.0.0-20190125091013-d26f9f9a57f3", "0.0.0", "0.1.1-0.20221104162952-702349b0e862", "0.1.1", "0.3.3", "0.3.10", "0.10.0", "1.0.0"},
		{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"},
		{"1.26.8", "v1.26.9", "go1.26.10", "1.27.0-0", "1.27.0-rc.1", "1.27.0", "1.27.3"},
		{"v1", "v1.2", "v1.2.1", "v2.0.0"},
		{"99999999999999999999.0.0", "100000000000000000000.0.0"},
	}
	for _, list := range ordered {
		for i := range list {
			for j := range list {
				want := 0
				if i < j {
					want = -1
				} else if i > j {
					want = 1
				}
				if got := compareVersions(list[i], list[j]); got != want {
					t.Errorf("compareVersions(%q, %q) = %d, want %d", list[i], list[j], got, want)
				}
			}
		}
	}
	same := [][2]string{{"1.2.3", "v1.2.3"}, {"go1.21.0", "1.21.0"}, {"1.2.3+build.7", "1.2.3"}, {"v1.2", "1.2.0"}}
	for _, p := range same {
		if got := compareVersions(p[0], p[1]); got != 0 {
			t.Errorf("compareVersions(%q, %q) = %d, want 0", p[0], p[1], got)
		}
	}
	invalid := []string{"", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "1.2.3-a..b", "1.2-pre", "x1.2.3", "1.2.3+", "1.2.3-a_b"}
	for _, s := range invalid {
		if _, ok := parseVersion(s); ok {
			t.Errorf("parseVersion(%q) accepted an invalid version", s)
		}
		if got := compareVersions(s, "0.0.0"); got != -1 {
			t.Errorf("compareVersions(%q, 0.0.0) = %d, want -1 (invalid sorts first)", s, got)
		}
	}
}

func rng(events ...string) osvRange {
	r := osvRange{Type: "SEMVER"}
	for _, e := range events {
		kind, v, _ := strings.Cut(e, ":")
		ev := struct {
			Introduced string `json:"introduced,omitempty"`
			Fixed      string `json:"fixed,omitempty"`
		}{}
		if kind == "i" {
			ev.Introduced = v
		} else {
			ev.Fixed = v
		}
		r.Events = append(r.Events, ev)
	}
	return r
}

func TestLatestFix(t *testing.T) {
	cases := []struct {
		name   string
		ranges []osvRange
		want   string
	}{
		{"no ranges", nil, ""},
		{"empty range", []osvRange{rng()}, ""},
		{"never fixed", []osvRange{rng("i:0")}, ""},
		{"simple", []osvRange{rng("i:0", "f:0.3.8")}, "0.3.8"},
		{"branches in one range", []osvRange{rng("i:0", "f:1.26.10", "i:1.27.0-0", "f:1.27.3")}, "1.27.3"},
		{"branches in two ranges", []osvRange{rng("i:0", "f:1.26.9"), rng("i:1.27.0-0", "f:1.27.2")}, "1.27.2"},
		{"reintroduced, no fix", []osvRange{rng("i:0", "f:1.5.0", "i:2.0.0")}, ""},
		{"unbounded range beside a fixed one", []osvRange{rng("i:0", "f:2.0.0"), rng("i:1.0.0")}, ""},
		{"fixed range beside unbounded one", []osvRange{rng("i:1.0.0"), rng("i:0", "f:2.0.0")}, ""},
		{"introduced at the fix", []osvRange{rng("i:1.0.0", "f:1.0.0")}, ""},
		{"unparsable fix", []osvRange{rng("i:0", "f:banana")}, ""},
		{"unparsable introduced", []osvRange{rng("i:banana", "f:1.0.0")}, ""},
		{"pseudo-versions", []osvRange{rng("i:0.0.0-20220524220425-1d687d428aca", "f:0.1.1-0.20221104162952-702349b0e862")}, "0.1.1-0.20221104162952-702349b0e862"},
		{"other range types ignored", []osvRange{{Type: "GIT"}, rng("i:0", "f:1.2.3")}, "1.2.3"},
		{"only other range types", []osvRange{{Type: "GIT"}}, ""},
	}
	for _, c := range cases {
		if got := latestFix(c.ranges); got != c.want {
			t.Errorf("%s: latestFix = %q, want %q", c.name, got, c.want)
		}
	}
}

const entryText = `{
  "schema_version": "1.3.1",
  "id": "%ID%",
  "modified": "%MOD%",
  "published": "2021-04-14T20:04:52Z",
  "aliases": ["CVE-2099-0001"],
  "summary": "test entry",
  "details": "details",
  "affected": [
    {"package": {"name": "example.com/a", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}],
     "ecosystem_specific": {"imports": [{"path": "example.com/a/p", "symbols": ["F"]}]}},
    {"package": {"name": "stdlib", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.26.9"}]}]},
    {"package": {"name": "stdlib", "ecosystem": "Go"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.27.0-0"}, {"fixed": "1.27.2"}]}]}
  ],
  "database_specific": {"url": "https://example.com/%ID%", "review_status": "REVIEWED"}
}`

func writeEntry(t *testing.T, dir, name, id, modified string) {
	t.Helper()
	text := strings.NewReplacer("%ID%", id, "%MOD%", modified).Replace(entryText)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestBuild(t *testing.T) {
	src := t.TempDir()
	writeEntry(t, src, "GO-2020-0001.json", "GO-2020-0001", "0001-01-01T00:00:00Z")
	writeEntry(t, src, "GO-2021-0002.json", "GO-2021-0002", "2024-05-06T07:08:09Z")
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("not an entry"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "db")
	snapshot := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	st, err := build(src, out, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 2 || st.Modules != 2 || !st.HasStd || !st.Modified.Equal(snapshot) {
		t.Errorf("stats = %+v", st)
	}

	var db struct{ Modified time.Time }
	readJSON(t, filepath.Join(out, "index", "db.json"), &db)
	if !db.Modified.Equal(snapshot) {
		t.Errorf("db.json modified = %v, want %v", db.Modified, snapshot)
	}

	var modules []moduleMeta
	readJSON(t, filepath.Join(out, "index", "modules.json"), &modules)
	if len(modules) != 2 || modules[0].Path != "example.com/a" || modules[1].Path != "stdlib" {
		t.Fatalf("modules.json = %+v", modules)
	}
	std := modules[1].Vulns
	if len(std) != 2 || std[0].ID != "GO-2020-0001" || std[1].ID != "GO-2021-0002" {
		t.Fatalf("stdlib vulns = %+v (want one line per entry, sorted)", std)
	}
	if std[0].Fixed != "1.27.2" || modules[0].Vulns[0].Fixed != "1.2.0" {
		t.Errorf("fixed versions = %q, %q", std[0].Fixed, modules[0].Vulns[0].Fixed)
	}
	if !std[0].Modified.Equal(snapshot) || !std[1].Modified.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("modified times = %v, %v", std[0].Modified, std[1].Modified)
	}

	var vulns []vulnMeta
	readJSON(t, filepath.Join(out, "index", "vulns.json"), &vulns)
	if len(vulns) != 2 || vulns[0].ID != "GO-2020-0001" || vulns[0].Aliases[0] != "CVE-2099-0001" {
		t.Errorf("vulns.json = %+v", vulns)
	}

	// The entry keeps every field; only a zero modified time is replaced.
	var e map[string]any
	readJSON(t, filepath.Join(out, "ID", "GO-2020-0001.json"), &e)
	if e["modified"] != "2026-11-05T23:49:57Z" || e["published"] != "2021-04-14T20:04:52Z" || e["summary"] != "test entry" {
		t.Errorf("entry = %v", e)
	}
	aff := e["affected"].([]any)[0].(map[string]any)
	if _, ok := aff["ecosystem_specific"]; !ok || len(e["affected"].([]any)) != 3 {
		t.Errorf("entry lost data: %v", e)
	}
	// An entry with a modified time is copied byte for byte.
	orig, _ := os.ReadFile(filepath.Join(src, "GO-2021-0002.json"))
	copied, _ := os.ReadFile(filepath.Join(out, "ID", "GO-2021-0002.json"))
	if string(orig) != string(copied) {
		t.Error("entry with a modified time was rewritten")
	}
}

func TestBuildRejectsBadEntries(t *testing.T) {
	for name, tc := range map[string]struct{ file, id string }{
		"file name differs from id": {"GO-2020-0001.json", "GO-2020-0002"},
		"id not a Go id":            {"x.json", "x"},
		"path in id":                {"GO-2020-0001.json", "../GO-2020-0001"},
	} {
		src := t.TempDir()
		writeEntry(t, src, tc.file, tc.id, "0001-01-01T00:00:00Z")
		if _, err := build(src, t.TempDir(), time.Now()); err == nil {
			t.Errorf("%s: build accepted it", name)
		}
	}
	if _, err := build(t.TempDir(), t.TempDir(), time.Now()); err == nil {
		t.Error("build accepted a directory without entries")
	}
}

func TestRunCachesFinishedDatabase(t *testing.T) {
	src := t.TempDir()
	osv := filepath.Join(src, "data", "osv")
	if err := os.MkdirAll(osv, 0o755); err != nil {
		t.Fatal(err)
	}
	writeEntry(t, osv, "GO-2020-0001.json", "GO-2020-0001", "0001-01-01T00:00:00Z")
	out := filepath.Join(t.TempDir(), "cache", "v1")
	args := []string{"-src", src, "-out", out, "-snapshot", "2026-11-05T23:49:57Z", "-min-entries", "1"}

	// A leftover from an interrupted build is replaced.
	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	m, ok := finished(out)
	if !ok || m.Entries != 1 || m.Format != format {
		t.Fatalf("finished = %+v, %v", m, ok)
	}

	// A finished database is reused, not rebuilt.
	stamp := filepath.Join(out, "ID", "GO-2020-0001.json")
	if err := os.WriteFile(stamp, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(stamp); string(b) != "{}" {
		t.Error("finished database was rebuilt")
	}
	if err := run(append(args, "-force")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(stamp); string(b) == "{}" {
		t.Error("-force did not rebuild")
	}

	if err := run([]string{"-src", src, "-out", filepath.Join(t.TempDir(), "x"), "-snapshot", "2026-11-05T23:49:57Z"}); err == nil {
		t.Error("run accepted fewer entries than -min-entries")
	}
	if err := run([]string{"-out", t.TempDir()}); err == nil {
		t.Error("run accepted neither -version nor -src")
	}
}

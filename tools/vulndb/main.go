// Command vulndb builds a local Go vulnerability database for govulncheck
// from the golang.org/x/vulndb module, fetched through the Go module proxy.
//
// CI cannot reach the vulnerability database's own host, only the module
// proxy, and the vulndb module carries every report as OSV JSON under
// data/osv. This command turns that data into the layout govulncheck reads
// with -db file:///dir (see build.go), caches it per vulndb version and
// prints the directory on stdout:
//
//	db=$(go run ./tools/vulndb -version v0.0.0-20261105234957-e22db6528018)
//	go run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -db "file://$db" ./...
//
// It uses the standard library only, so it does not touch go.mod. See
// docs/decisions/0001-offline-vulnerability-database.md.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// format is bumped whenever build writes something different, so that
// cached databases from an older build are rebuilt.
const format = 1

// markerName is written last into a finished database; a directory without
// it is an interrupted build and is rebuilt.
const markerName = ".sealpost-vulndb.json"

type marker struct {
	Format   int       `json:"format"`
	Module   string    `json:"module"`
	Version  string    `json:"version"`
	Entries  int       `json:"entries"`
	Modules  int       `json:"modules"`
	Modified time.Time `json:"modified"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("vulndb", flag.ContinueOnError)
	module := fl.String("module", "golang.org/x/vulndb", "module holding the vulnerability data")
	version := fl.String("version", "", "exact version of -module to build from (required unless -src is given)")
	src := fl.String("src", "", "use this directory (holding data/osv) instead of downloading -module")
	cache := fl.String("cache", "", "cache root; the database goes to <cache>/<version> (default: $XDG_CACHE_HOME or ~/.cache, then sealpost-vulndb)")
	out := fl.String("out", "", "write the database here instead of the cache")
	snapshotFlag := fl.String("snapshot", "", "RFC 3339 time given to entries without a modified time (default: the module version's time)")
	minEntries := fl.Int("min-entries", 1000, "fail when fewer entries are found (guards against a changed module layout)")
	force := fl.Bool("force", false, "rebuild even when a finished database is cached")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if *src == "" && *version == "" {
		return errors.New("-version is required (or -src)")
	}

	dir := *out
	if dir == "" {
		root := *cache
		if root == "" {
			root = defaultCache()
		}
		name := *version
		if name == "" {
			name = "local"
		}
		dir = filepath.Join(root, name)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}

	if !*force {
		if m, ok := finished(dir); ok {
			fmt.Fprintf(os.Stderr, "vulndb: using cached database %s (%s@%s, %d entries)\n", dir, m.Module, m.Version, m.Entries)
			fmt.Println(dir)
			return nil
		}
	}

	var snapshot time.Time
	if *snapshotFlag != "" {
		if snapshot, err = time.Parse(time.RFC3339, *snapshotFlag); err != nil {
			return fmt.Errorf("-snapshot: %v", err)
		}
	}
	root := *src
	if root == "" {
		start := time.Now()
		dl, err := download(*module, *version)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "vulndb: %s@%s in %s (%.1fs)\n", *module, *version, dl.Dir, time.Since(start).Seconds())
		root = dl.Dir
		if snapshot.IsZero() {
			snapshot = dl.Time
		}
	}
	if snapshot.IsZero() {
		return errors.New("no time for entries without one: give -snapshot")
	}

	start := time.Now()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	// Build beside the destination so the final rename is atomic.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	st, err := build(filepath.Join(root, "data", "osv"), tmp, snapshot.UTC())
	if err != nil {
		return err
	}
	if st.Entries < *minEntries {
		return fmt.Errorf("only %d entries in %s (want at least %d): has the module's layout changed?", st.Entries, root, *minEntries)
	}
	if *src == "" && !st.HasStd {
		return fmt.Errorf("no entries for the standard library in %s: has the module's layout changed?", root)
	}
	m := marker{Format: format, Module: *module, Version: *version, Entries: st.Entries, Modules: st.Modules, Modified: st.Modified}
	if *src != "" {
		m.Module, m.Version = "", ""
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, markerName), append(b, '\n'), 0o644); err != nil {
		return err
	}
	// Replace whatever is there (an interrupted or outdated build); if a
	// concurrent run finished first, keep its result.
	if err := os.Rename(tmp, dir); err != nil {
		if _, ok := finished(dir); ok && !*force {
			fmt.Println(dir)
			return nil
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "vulndb: built %s: %d entries, %d modules, modified %s (%.1fs)\n",
		dir, st.Entries, st.Modules, st.Modified.Format(time.RFC3339), time.Since(start).Seconds())
	fmt.Println(dir)
	return nil
}

// finished reports whether dir holds a database completed by this format.
func finished(dir string) (marker, bool) {
	var m marker
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil || json.Unmarshal(b, &m) != nil || m.Format != format {
		return marker{}, false
	}
	for _, f := range []string{"index/db.json", "index/modules.json"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			return marker{}, false
		}
	}
	return m, true
}

func defaultCache() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "sealpost-vulndb")
	}
	return filepath.Join(os.TempDir(), "sealpost-vulndb")
}

type downloaded struct {
	Dir  string
	Time time.Time
}

// download fetches module@version into the module cache with the go
// command, so GOPROXY, GOSUMDB (checksum verification) and GOFLAGS apply
// as for any module. It runs outside any module so no go.mod is touched.
func download(module, version string) (downloaded, error) {
	if strings.ContainsAny(module+version, " \t\n@") {
		return downloaded{}, fmt.Errorf("bad module %q or version %q", module, version)
	}
	work, err := os.MkdirTemp("", "vulndb-download-")
	if err != nil {
		return downloaded{}, err
	}
	defer os.RemoveAll(work)
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res struct {
		Dir   string
		Info  string
		Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		if runErr != nil {
			return downloaded{}, fmt.Errorf("go mod download %s@%s: %v\n%s", module, version, runErr, stderr.Bytes())
		}
		return downloaded{}, fmt.Errorf("go mod download %s@%s: %v", module, version, err)
	}
	if res.Error != "" {
		return downloaded{}, fmt.Errorf("go mod download %s@%s: %s", module, version, res.Error)
	}
	if runErr != nil {
		return downloaded{}, fmt.Errorf("go mod download %s@%s: %v\n%s", module, version, runErr, stderr.Bytes())
	}
	if res.Dir == "" {
		return downloaded{}, fmt.Errorf("go mod download %s@%s: no directory reported", module, version)
	}
	if _, err := fs.Stat(os.DirFS(res.Dir), "data/osv"); err != nil {
		return downloaded{}, fmt.Errorf("%s@%s has no data/osv directory: %v", module, version, err)
	}
	dl := downloaded{Dir: res.Dir}
	if res.Info != "" {
		var info struct{ Time time.Time }
		if b, err := os.ReadFile(res.Info); err == nil && json.Unmarshal(b, &info) == nil {
			dl.Time = info.Time
		}
	}
	return dl, nil
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The layout written here is the "v1" API of a Go vulnerability database as
// govulncheck reads it from a file:// URL (golang.org/x/vuln
// internal/client): uncompressed JSON at
//
//	index/db.json       {"modified": T}
//	index/modules.json  [{"path": M, "vulns": [{"id", "modified", "fixed"}]}]
//	index/vulns.json    [{"id", "modified", "aliases"}]
//	ID/<GO-ID>.json     the OSV entry
//
// govulncheck only needs db.json, modules.json and ID/; vulns.json is
// written so the directory is a complete database.

// idPattern is the shape of a Go vulnerability id. It also keeps ids from
// naming anything but a plain file under ID/.
var idPattern = regexp.MustCompile(`^GO-[0-9]{4}-[0-9]{4,}$`)

// entry holds the parts of an OSV entry that the indexes need.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	} `json:"events"`
}

type dbMeta struct {
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

type vulnMeta struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

// stats summarises a built database.
type stats struct {
	Entries  int
	Modules  int
	Modified time.Time
	HasStd   bool // the "stdlib" pseudo-module has entries
}

// build reads every <ID>.json OSV file in osvDir and writes a v1 database
// into outDir, which must not exist yet or be empty.
//
// The OSV files in golang.org/x/vulndb's data/osv carry a zero "modified"
// time: the upstream generator fills it from git history, which a module
// zip does not have. Such entries get snapshot (the time of the vulndb
// revision) instead, an upper bound of the real value. "published" is left
// as it is.
func build(osvDir, outDir string, snapshot time.Time) (stats, error) {
	files, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil {
		return stats{}, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return stats{}, fmt.Errorf("no OSV entries (*.json) in %s", osvDir)
	}
	if err := os.MkdirAll(filepath.Join(outDir, "ID"), 0o755); err != nil {
		return stats{}, err
	}
	if err := os.MkdirAll(filepath.Join(outDir, "index"), 0o755); err != nil {
		return stats{}, err
	}

	var (
		db      dbMeta
		modules = map[string]*moduleMeta{}
		vulns   []vulnMeta
	)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return stats{}, err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return stats{}, fmt.Errorf("%s: %v", file, err)
		}
		if !idPattern.MatchString(e.ID) {
			return stats{}, fmt.Errorf("%s: id %q is not a Go vulnerability id", file, e.ID)
		}
		if filepath.Base(file) != e.ID+".json" {
			return stats{}, fmt.Errorf("%s: holds entry %s; want file name %s.json", file, e.ID, e.ID)
		}
		if len(e.Affected) == 0 {
			return stats{}, fmt.Errorf("%s: no affected modules", file)
		}
		if e.Modified.IsZero() {
			e.Modified = snapshot
			// Rewrite only that field; every other value is kept verbatim.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(b, &raw); err != nil {
				return stats{}, fmt.Errorf("%s: %v", file, err)
			}
			ts, err := json.Marshal(snapshot)
			if err != nil {
				return stats{}, err
			}
			raw["modified"] = ts
			if b, err = json.Marshal(raw); err != nil {
				return stats{}, err
			}
		}
		if err := os.WriteFile(filepath.Join(outDir, "ID", e.ID+".json"), b, 0o644); err != nil {
			return stats{}, err
		}

		if e.Modified.After(db.Modified) {
			db.Modified = e.Modified
		}
		vulns = append(vulns, vulnMeta{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		// An entry may list a module in several "affected" blocks (the
		// standard library once per release branch, say). The index gets
		// one line per module and entry, with a fix over all its ranges, so
		// govulncheck reads and reports the entry once.
		var order []string
		ranges := map[string][]osvRange{}
		for _, a := range e.Affected {
			path := strings.TrimSpace(a.Package.Name)
			if path == "" {
				return stats{}, fmt.Errorf("%s: affected package without a name", file)
			}
			if _, seen := ranges[path]; !seen {
				order = append(order, path)
				ranges[path] = []osvRange{}
			}
			if len(a.Ranges) == 0 {
				// No ranges: every version is affected.
				ranges[path] = append(ranges[path], osvRange{Type: "SEMVER"})
			}
			ranges[path] = append(ranges[path], a.Ranges...)
		}
		for _, path := range order {
			m := modules[path]
			if m == nil {
				m = &moduleMeta{Path: path, Vulns: []moduleVuln{}}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified, Fixed: latestFix(ranges[path])})
		}
	}

	paths := make([]string, 0, len(modules))
	for p := range modules {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	index := make([]*moduleMeta, 0, len(paths))
	for _, p := range paths {
		m := modules[p]
		sort.SliceStable(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		index = append(index, m)
	}
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })

	for name, v := range map[string]any{"db.json": db, "modules.json": index, "vulns.json": vulns} {
		b, err := json.Marshal(v)
		if err != nil {
			return stats{}, err
		}
		if err := os.WriteFile(filepath.Join(outDir, "index", name), b, 0o644); err != nil {
			return stats{}, err
		}
	}
	_, hasStd := modules["stdlib"]
	return stats{Entries: len(vulns), Modules: len(modules), Modified: db.Modified, HasStd: hasStd}, nil
}

// latestFix returns a version from which on no range affects the module,
// or "" when there is none. govulncheck uses this value only to skip
// entries without reading them (a module at or above it is not affected),
// so erring towards "" is always safe: it only costs reading the entry,
// whose ranges govulncheck then checks exactly. Hence "" for a range that
// has no events, was never fixed, was introduced again at or after its
// latest fix, or holds a version that does not parse, and for a list with
// no SEMVER range (which govulncheck reads as "every version").
func latestFix(ranges []osvRange) string {
	fix := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		fixed, introduced := "", ""
		for _, ev := range r.Events {
			for _, v := range []string{ev.Fixed, ev.Introduced} {
				if v != "" && v != "0" {
					if _, ok := parseVersion(v); !ok {
						return ""
					}
				}
			}
			if ev.Fixed != "" && (fixed == "" || compareVersions(ev.Fixed, fixed) > 0) {
				fixed = ev.Fixed
			}
			if ev.Introduced != "" && ev.Introduced != "0" && (introduced == "" || compareVersions(ev.Introduced, introduced) > 0) {
				introduced = ev.Introduced
			}
		}
		if fixed == "" || (introduced != "" && compareVersions(introduced, fixed) >= 0) {
			return ""
		}
		if fix == "" || compareVersions(fixed, fix) > 0 {
			fix = fixed
		}
	}
	return fix
}

// Command vulngate reads govulncheck's JSON output (-format json), prints
// a short report and fails when a vulnerability is reachable from our code
// (a symbol-level finding: a vulnerable function is called) unless that
// exact finding is accepted in an accept file.
//
// govulncheck's text mode already fails on reachable vulnerabilities, but
// it has no way to record a decision such as "the standard library fix
// needs a Go release this machine cannot have yet". An accept file line
//
//	GO-2026-6809 stdlib@go1.26.8 fixed in go1.26.10; toolchain here is go1.26.8
//
// names the vulnerability, the module and the exact version it was found
// in, and a reason. It matches only that version, so it lapses by itself
// when the module or toolchain is upgraded. Accepted findings are printed on
// every run; entries that no longer match are reported as stale.
//
//	go run ./tools/vulngate -accept .ci/vulncheck-accept govulncheck.json
//
// Exit status: 0 when nothing unaccepted is reachable, 1 when something is,
// 2 when the input or accept file cannot be used.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// The subset of govulncheck's JSON protocol (v1.0.0) used here; see
// golang.org/x/vuln/internal/govulncheck.
type message struct {
	Config  *config  `json:"config"`
	OSV     *osv     `json:"osv"`
	Finding *finding `json:"finding"`
}

type config struct {
	ProtocolVersion string     `json:"protocol_version"`
	ScannerVersion  string     `json:"scanner_version"`
	DB              string     `json:"db"`
	DBLastModified  *time.Time `json:"db_last_modified"`
	GoVersion       string     `json:"go_version"`
	ScanLevel       string     `json:"scan_level"`
}

type osv struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

type finding struct {
	OSV          string   `json:"osv"`
	FixedVersion string   `json:"fixed_version"`
	Trace        []*frame `json:"trace"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
		Column   int    `json:"column"`
	} `json:"position"`
}

// level orders findings: a vulnerable module is required, a vulnerable
// package imported, a vulnerable symbol called.
type level int

const (
	required level = iota
	imported
	called
)

func (f *finding) level() level {
	switch {
	case len(f.Trace) > 0 && f.Trace[0].Function != "":
		return called
	case len(f.Trace) > 0 && f.Trace[0].Package != "":
		return imported
	}
	return required
}

// vuln is one vulnerability with its most severe findings.
type vuln struct {
	ID, Summary     string
	Module, Version string // where it was found (first frame)
	Fixed           string
	Level           level
	Traces          []string
	Accepted        *acceptEntry
}

type acceptEntry struct {
	ID, Module, Version, Reason string
	Line                        int
	used                        bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("vulngate", flag.ContinueOnError)
	fl.SetOutput(stderr)
	acceptPath := fl.String("accept", "", "file of accepted findings (see package doc)")
	maxTraces := fl.Int("traces", 2, "example call paths to print per reachable vulnerability")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	in := stdin
	if fl.NArg() > 1 {
		fmt.Fprintln(stderr, "vulngate: at most one report file")
		return 2
	}
	if fl.NArg() == 1 {
		f, err := os.Open(fl.Arg(0))
		if err != nil {
			fmt.Fprintln(stderr, "vulngate:", err)
			return 2
		}
		defer f.Close()
		in = f
	}
	var accepted []*acceptEntry
	if *acceptPath != "" {
		var err error
		if accepted, err = readAccept(*acceptPath); err != nil {
			fmt.Fprintln(stderr, "vulngate:", err)
			return 2
		}
	}
	cfg, vulns, err := readReport(in, *maxTraces)
	if err != nil {
		fmt.Fprintln(stderr, "vulngate:", err)
		return 2
	}
	return report(stdout, cfg, vulns, accepted, *acceptPath)
}

func readReport(r io.Reader, maxTraces int) (*config, []*vuln, error) {
	var (
		cfg      *config
		summary  = map[string]string{}
		byKey    = map[string]*vuln{}
		dec      = json.NewDecoder(r)
		messages int
	)
	for {
		var m message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("reading govulncheck JSON: %v", err)
		}
		messages++
		switch {
		case m.Config != nil:
			cfg = m.Config
		case m.OSV != nil:
			summary[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil:
			f := m.Finding
			if f.OSV == "" || len(f.Trace) == 0 {
				continue
			}
			// One vulnerability can be found in several modules (the
			// standard library and golang.org/x/net, say): one row each.
			lvl := f.level()
			key := f.OSV + " " + f.Trace[0].Module
			v := byKey[key]
			if v == nil || lvl > v.Level {
				v = &vuln{ID: f.OSV, Module: f.Trace[0].Module, Version: f.Trace[0].Version, Fixed: f.FixedVersion, Level: lvl}
				byKey[key] = v
			}
			if lvl == called && lvl == v.Level && len(v.Traces) < maxTraces {
				t := formatTrace(f.Trace)
				dup := false
				for _, have := range v.Traces {
					dup = dup || have == t
				}
				if !dup {
					v.Traces = append(v.Traces, t)
				}
			}
		}
	}
	if cfg == nil {
		return nil, nil, errors.New("no config message: not govulncheck -format json output")
	}
	if cfg.ScanLevel != "" && cfg.ScanLevel != "symbol" {
		return nil, nil, fmt.Errorf("scan level is %q; run govulncheck at symbol level (the default) so reachability is known", cfg.ScanLevel)
	}
	var vulns []*vuln
	for _, v := range byKey {
		v.Summary = summary[v.ID]
		vulns = append(vulns, v)
	}
	sort.Slice(vulns, func(i, j int) bool {
		if vulns[i].ID != vulns[j].ID {
			return vulns[i].ID < vulns[j].ID
		}
		return vulns[i].Module < vulns[j].Module
	})
	return cfg, vulns, nil
}

// formatTrace renders a call path from our code (the last frame) down to
// the vulnerable symbol (the first).
func formatTrace(trace []*frame) string {
	var names []string
	for i := len(trace) - 1; i >= 0; i-- {
		names = append(names, symbol(trace[i]))
	}
	if len(names) > 4 {
		names = append(names[:2], "…", names[len(names)-1])
	}
	s := strings.Join(names, " → ")
	if p := trace[len(trace)-1].Position; p != nil && p.Filename != "" {
		s = fmt.Sprintf("%s:%d:%d: %s", p.Filename, p.Line, p.Column, s)
	}
	return s
}

func symbol(f *frame) string {
	pkg := f.Package
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	name := f.Function
	if f.Receiver != "" {
		name = strings.TrimPrefix(f.Receiver, "*") + "." + name
	}
	if pkg == "" {
		return name
	}
	return pkg + "." + name
}

// readAccept parses lines "<GO-ID> <module>@<version> <reason…>"; '#'
// starts a comment line. A reason is required.
func readAccept(path string) ([]*acceptEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var entries []*acceptEntry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || !strings.HasPrefix(fields[0], "GO-") {
			return nil, fmt.Errorf("%s:%d: want \"GO-YYYY-NNNN module@version reason\"", path, n)
		}
		mod, ver, ok := strings.Cut(fields[1], "@")
		if !ok || mod == "" || ver == "" {
			return nil, fmt.Errorf("%s:%d: %q is not module@version", path, n, fields[1])
		}
		entries = append(entries, &acceptEntry{
			ID: fields[0], Module: mod, Version: canonical(ver),
			Reason: strings.Join(fields[2:], " "), Line: n,
		})
	}
	return entries, sc.Err()
}

// canonical writes Go versions as govulncheck's JSON does ("go1.26.8" and
// "v1.26.8" are the same standard library).
func canonical(v string) string {
	if strings.HasPrefix(v, "go") {
		return "v" + strings.TrimPrefix(v, "go")
	}
	return v
}

func report(w io.Writer, cfg *config, vulns []*vuln, accept []*acceptEntry, acceptPath string) int {
	db := cfg.DB
	if cfg.DBLastModified != nil {
		db += " (updated " + cfg.DBLastModified.UTC().Format("2006-01-02") + ")"
	}
	fmt.Fprintf(w, "govulncheck %s, %s, database %s\n", cfg.ScannerVersion, cfg.GoVersion, db)

	var reachable, failing []*vuln
	counts := map[level]int{}
	for _, v := range vulns {
		counts[v.Level]++
		if v.Level != called {
			continue
		}
		reachable = append(reachable, v)
		for _, a := range accept {
			if a.ID == v.ID && a.Module == v.Module && a.Version == canonical(v.Version) {
				a.used = true
				v.Accepted = a
			}
		}
		if v.Accepted == nil {
			failing = append(failing, v)
		}
	}
	fmt.Fprintf(w, "reachable vulnerabilities: %d (%d accepted in %s)\n", len(reachable), len(reachable)-len(failing), orNone(acceptPath))
	for _, v := range reachable {
		tag := "NOT ACCEPTED"
		if v.Accepted != nil {
			tag = "accepted"
		}
		fixed := "no fix yet"
		if v.Fixed != "" {
			fixed = "fixed in " + v.Fixed
		}
		fmt.Fprintf(w, "  %s %s in %s@%s, %s: %s\n", tag, v.ID, v.Module, v.Version, fixed, v.Summary)
		if v.Accepted != nil {
			fmt.Fprintf(w, "      reason (%s:%d): %s\n", acceptPath, v.Accepted.Line, v.Accepted.Reason)
		}
		for _, t := range v.Traces {
			fmt.Fprintf(w, "      %s\n", t)
		}
	}
	fmt.Fprintf(w, "not reachable: %d in imported packages, %d in required modules (govulncheck -show verbose lists them)\n", counts[imported], counts[required])
	for _, a := range accept {
		if !a.used {
			fmt.Fprintf(w, "stale accept entry %s:%d: %s in %s@%s was not found reachable in this scan (remove the line once it is gone from the whole module)\n", acceptPath, a.Line, a.ID, a.Module, a.Version)
		}
	}
	if len(failing) > 0 {
		fmt.Fprintf(w, "FAIL: %d reachable vulnerabilities not accepted: upgrade the module (or toolchain), or record a reviewed decision in %s\n", len(failing), orNone(acceptPath))
		return 1
	}
	return 0
}

func orNone(path string) string {
	if path == "" {
		return "(no accept file)"
	}
	return path
}

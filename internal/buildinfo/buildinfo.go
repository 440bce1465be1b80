// Package buildinfo reports what a sealpost binary is: its version and the
// exact modules compiled into it, read from the build information the Go
// toolchain embeds. `sealpost version` prints it as the deployed-software
// inventory that security reviews and vulnerability scans ask for. The
// package reads only the running binary; it knows nothing of the store or
// the network.
package buildinfo

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// version is set at link time for release builds:
//
//	go build -ldflags "-X github.com/sealpost/sealpost/internal/buildinfo.version=v1.2.3" ./cmd/sealpost
var version string

// Module is one module compiled into the binary.
type Module struct {
	// Path is the module path, e.g. "github.com/jackc/pgx/v5".
	Path string
	// Version is the module version; empty for a replacement by a local
	// directory.
	Version string
	// Sum is the go.sum checksum ("h1:..."); empty when the toolchain did
	// not record one (local replacements).
	Sum string
	// Replace is the module actually compiled in place of this one, or nil.
	Replace *Module
}

// String returns "path version", with " => path version" for a
// replacement.
func (m Module) String() string {
	s := strings.TrimSpace(m.Path + " " + m.Version)
	if m.Replace != nil {
		s += " => " + m.Replace.String()
	}
	return s
}

// Version returns the version of this binary, the first of: the version
// set at link time (see the package source); the main module version the
// Go toolchain stamped, such as "v1.2.3" for `go install ...@v1.2.3` or a
// pseudo-version such as "v0.0.0-20260102150405-abcdef123456+dirty" for a
// build in a checkout; a pseudo-version made from the VCS revision and
// time; "devel".
func Version() string {
	bi, _ := debug.ReadBuildInfo() // nil without module support
	return versionOf(version, bi)
}

func versionOf(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi == nil {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return vcsVersion(bi.Settings)
}

// vcsVersion builds a Go-style pseudo-version from the vcs.* build
// settings, which `go build` records in a checkout unless -buildvcs=false.
func vcsVersion(settings []debug.BuildSetting) string {
	var rev, stamp string
	dirty := false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			stamp = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	rev = rev[:min(len(rev), 12)]
	v := "devel-" + rev
	if t, err := time.Parse(time.RFC3339, stamp); err == nil {
		v = "v0.0.0-" + t.UTC().Format("20060102150405") + "-" + rev
	}
	if dirty {
		v += "+dirty"
	}
	return v
}

// Modules returns the modules compiled into the binary, main module
// excluded, in the order the toolchain lists them (by path). It returns
// nil for a binary built without module support.
func Modules() []Module {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return modulesOf(bi)
}

func modulesOf(bi *debug.BuildInfo) []Module {
	mods := make([]Module, 0, len(bi.Deps))
	for _, d := range bi.Deps {
		mods = append(mods, moduleOf(d))
	}
	return mods
}

func moduleOf(d *debug.Module) Module {
	m := Module{Path: d.Path, Version: d.Version, Sum: d.Sum}
	if d.Replace != nil {
		r := moduleOf(d.Replace)
		m.Replace = &r
	}
	return m
}

// WriteInventory writes the software inventory of this binary to w: a
// header line "sealpost <version> (<go version>)", then one line
// "<module path> <version>" per compiled-in module, with
// " => <path> <version>" when the module was replaced.
func WriteInventory(w io.Writer) error {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return writeInventory(w, versionOf(version, bi), bi)
}

func writeInventory(w io.Writer, v string, bi *debug.BuildInfo) error {
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "sealpost %s (%s)\n", v, goVersion)
	for _, m := range modulesOf(bi) {
		fmt.Fprintln(bw, m.String())
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	return nil
}

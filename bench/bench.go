// Package bench holds Sealpost's load harness: whole-system measurements
// run by `sealpost bench ...` and by the Go benchmarks beside it. Results
// are printed with the machine and command that produced them and copied
// into docs/BENCHMARKS.md.
package bench

import (
	"fmt"
	"time"
)

// Result is one measured figure.
type Result struct {
	// Name says what was measured, e.g. "store.insert.single".
	Name string
	// Dialect is "sqlite" or "postgres" ("" when not store-bound).
	Dialect string
	// Ops is how many operations ran in Elapsed.
	Ops int
	// Elapsed is the wall time of the measured part.
	Elapsed time.Duration
}

// PerSecond returns operations per second.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// String formats the result as one table-friendly line.
func (r Result) String() string {
	return fmt.Sprintf("%-32s %-9s %10d ops %12s %12.0f ops/s", r.Name, r.Dialect, r.Ops, r.Elapsed.Round(time.Millisecond), r.PerSecond())
}

// Progress reports progress of a long run; done of total units.
type Progress func(name string, done, total int)

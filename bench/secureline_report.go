package bench

import (
	"fmt"
	"strings"
)

// Baseline returns the first TLS-only figure, the one every ratio is
// taken against.
func (r SecureLineReport) Baseline() (Figure, bool) {
	for _, f := range r.Figures {
		if f.ID == "tls" {
			return f, true
		}
	}
	return Figure{}, false
}

// Markdown renders the report as docs/BENCHMARKS.md holds it: one row
// per variant, then each variant against TLS only in the same run.
func (r SecureLineReport) Markdown() string {
	var b strings.Builder
	b.WriteString("| variant | the recipient gets | messages | msg/s | CPU-s / 1,000 msgs | p50 | p99 | checked at the sink |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %s | %s | %s | %s |\n", f.Target, f.What, f.Messages, f.PerSecond(),
			cpuCell(f), roundLatency(f.P50), roundLatency(f.P99), f.Notes)
	}
	if base, ok := r.Baseline(); ok && base.CPUPer1000() > 0 && base.PerSecond() > 0 {
		b.WriteString("\n| against TLS only, same run | CPU per message | added CPU-ms per message | msg/s |\n| --- | ---: | ---: | ---: |\n")
		for _, f := range r.Figures {
			if f.ID == base.ID {
				continue
			}
			fmt.Fprintf(&b, "| %s | %.2f× | %+.2f | %.2f× |\n", f.Target, f.CPUPer1000()/base.CPUPer1000(),
				f.CPUPer1000()-base.CPUPer1000(), f.PerSecond()/base.PerSecond())
		}
	}
	if r.CPUSource != "" {
		fmt.Fprintf(&b, "\nServer CPU (%s): %s, from the first request of a variant until the server was idle after its last message.\n", r.Store, r.CPUSource)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}

func cpuCell(f Figure) string {
	if c := f.CPUPer1000(); c > 0 {
		return fmt.Sprintf("%.3f", c)
	}
	return "—"
}

package bench

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the report as the table docs/BENCHMARKS.md holds,
// followed by the Sealpost/Postfix ratios and how CPU was measured.
func (r FiguresReport) Markdown() string {
	var b strings.Builder
	b.WriteString("| fig | target | measured | messages | msg/s | CPU-s / 1,000 msgs | p50 | p99 | notes |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, f := range r.Figures {
		cpu := "—"
		if c := f.CPUPer1000(); c > 0 {
			cpu = fmt.Sprintf("%.3f", c)
		}
		fmt.Fprintf(&b, "| (%s) | %s | %s | %d | %.0f | %s | %s | %s | %s |\n", f.ID, f.Target, f.What, f.Messages, f.PerSecond(), cpu,
			roundLatency(f.P50), roundLatency(f.P99), f.Notes)
	}
	var ours, theirs []Figure
	for _, f := range r.Figures {
		switch f.ID {
		case "a":
			ours = append(ours, f)
		case "b":
			theirs = append(theirs, f)
		}
	}
	if len(ours) > 0 && len(theirs) > 0 {
		b.WriteString("\n| ratio | msg/s | CPU per message |\n| --- | ---: | ---: |\n")
		for _, o := range ours {
			for _, t := range theirs {
				cpu := "—"
				if o.CPUPer1000() > 0 && t.CPUPer1000() > 0 {
					cpu = fmt.Sprintf("%.2f×", o.CPUPer1000()/t.CPUPer1000())
				}
				fmt.Fprintf(&b, "| %s ÷ %s | %.2f× | %s |\n", o.Target, t.Target, o.PerSecond()/t.PerSecond(), cpu)
			}
		}
	}
	if r.CPUSource != "" {
		fmt.Fprintf(&b, "\nSealpost CPU: %s. Postfix CPU: its master and every daemon it ran, plus OpenDKIM (/proc).\n", r.CPUSource)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}

func roundLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

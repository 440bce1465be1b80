package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/bench"
	"github.com/sealpost/sealpost/internal/store"
)

// runDeliveryFigures is `sealpost bench delivery-figures`: the delivery
// figures of issue 4 in one run, printed as a markdown table
// (docs/BENCHMARKS.md, "Delivery (issue 4) — method").
func runDeliveryFigures(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "bench delivery-figures", "bench delivery-figures [--postgres URL] [-n 100000] [--domains 20] [--delay 0] [--temp-fail 0.02 --perm-fail 0.01] [--matrix] [--postfix auto|on|off]")
	pgURL := fs.String("postgres", "", "also measure on PostgreSQL: a server URL; a scratch database is created there per server and dropped (default $SEALPOST_TEST_POSTGRES)")
	sqliteOnly := fs.Bool("sqlite-only", false, "measure on SQLite only, even when --postgres or SEALPOST_TEST_POSTGRES is set")
	n := fs.Int("n", 100000, "messages in each end-to-end run, (a) and (b), and in the (c) batch run")
	domainCount := fs.Int("domains", 20, "destination domains, each its own sink listener (next hop)")
	delay := fs.Duration("delay", 0, "the sink's delay before each reply to MAIL, RCPT and DATA")
	tempFail := fs.Float64("temp-fail", 0, "share of recipients the sink answers 451 at their first attempt (accepted on retry)")
	permFail := fs.Float64("perm-fail", 0, "share of recipients the sink answers 550 (bounced)")
	awaitRetries := fs.Bool("await-retries", true, "after the first attempts, wait until every deferred message was delivered by retry (minutes of backoff)")
	matrix := fs.Bool("matrix", false, "run (a) and (b) for 20 and 1,000 domains, each with sink delay 0 and 30ms (--domains and --delay are ignored), (c) and (d) once")
	batch := fs.Int("batch", 1000, "messages per POST /v1/messages/batch")
	batchClients := fs.Int("batch-clients", 1, "(a): concurrent batch posters")
	concurrency := fs.Int("concurrency", 16, "(b), (c), (d): concurrent clients (HTTP requests in flight, SMTP connections)")
	apiN := fs.Int("api-n", 0, "(c): messages sent one per POST /v1/messages; default min(n, 10000)")
	relayN := fs.Int("relay-n", 0, "(d): messages sent through the SMTP relay; default min(n, 10000)")
	postfix := fs.String("postfix", "auto", "(b) the Postfix comparison: auto (when postfix and opendkim are installed), on (required), off")
	postfixNoDKIM := fs.Bool("postfix-no-dkim", true, "(b): also run Postfix without OpenDKIM (the reference point)")
	inProcess := fs.Bool("in-process", false, "run the server inside this process (its CPU figure then includes the load generator and sink)")
	skip := fs.String("skip", "", "figures to leave out, comma-separated: a,b,c,d")
	dir := fs.String("dir", "", "directory for the run's logs and data (default a new one under the system temporary directory, kept)")
	out := fs.String("out", "", "also write the markdown report to this file")
	var sets multiFlag
	fs.Var(&sets, "set", "extra server configuration, key=value (repeatable), e.g. --set queue.max_workers=50")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	if *pgURL == "" && !*sqliteOnly {
		*pgURL = lookupEnv(env.Environ, "SEALPOST_TEST_POSTGRES")
	}
	// Ctrl-C ends the run through ctx, so the private Postfix (a daemon
	// that would outlive this process) and the server are stopped.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var serverEnv []string
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--set %q: want key=value", kv)
		}
		serverEnv = append(serverEnv, "SEALPOST_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))+"="+v)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "sealpost-delivery-figures-")
		if err != nil {
			return err
		}
		*dir = d
	}
	logLine := func(format string, a ...any) {
		fmt.Fprintf(env.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	launch := bench.InProcessLauncher(filepath.Join(*dir, "server.log"))
	if !*inProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to run the server: %w (or use --in-process)", err)
		}
		launch = bench.ExecLauncher(exe, filepath.Join(*dir, "server.log"))
	}
	stores := []bench.StoreTarget{{Name: "sqlite"}}
	if *pgURL != "" && !*sqliteOnly {
		url := *pgURL
		stores = append(stores, bench.StoreTarget{Name: "postgres", NewDatabase: func(ctx context.Context) (string, func(), error) {
			return scratchDatabase(ctx, store.Postgres, url)
		}})
	}
	skips := map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(strings.Trim(s, "()")); s != "" {
			skips[s] = true
		}
	}
	var pf *bench.PostfixConfig
	switch *postfix {
	case "off":
	case "auto", "on":
		if err := bench.PostfixAvailable(); err != nil {
			if *postfix == "on" {
				return fmt.Errorf("--postfix on: %w", err)
			}
			logLine("(b) Postfix comparison skipped: %v", err)
			break
		}
		pf = &bench.PostfixConfig{AlsoWithoutDKIM: *postfixNoDKIM}
	default:
		return fmt.Errorf("--postfix %q: want auto, on or off", *postfix)
	}

	type shape struct {
		domains int
		delay   time.Duration
	}
	shapes := []shape{{*domainCount, *delay}}
	if *matrix {
		shapes = []shape{{20, 0}, {20, 30 * time.Millisecond}, {1000, 0}, {1000, 30 * time.Millisecond}}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "# sealpost bench delivery-figures %s\n\nmachine: %s/%s, %d CPUs, %s; started %s; run directory %s\n",
		strings.Join(args, " "), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339), *dir)
	for i, sh := range shapes {
		sk := map[string]bool{}
		for k := range skips {
			sk[k] = true
		}
		if i > 0 { // acceptance does not depend on the sink's shape
			sk["c"], sk["d"] = true, true
		}
		cfg := bench.FiguresConfig{
			Messages: *n, Domains: sh.domains, AwaitRetries: *awaitRetries && *tempFail > 0,
			Sink:  bench.SinkConfig{Delay: sh.delay, TempFail: *tempFail, PermFail: *permFail},
			Batch: *batch, BatchClients: *batchClients, Concurrency: *concurrency, APIMessages: *apiN, RelayMessages: *relayN,
			Stores: stores, Launch: launch, ServerEnv: serverEnv, Postfix: pf, Skip: sk,
			Dir: filepath.Join(*dir, fmt.Sprintf("d%d-delay%s", sh.domains, sh.delay)), Log: logLine,
		}
		logLine("== %d messages, %d domains, sink delay %s, temp-fail %.3f, perm-fail %.3f", *n, sh.domains, sh.delay, *tempFail, *permFail)
		rep, err := bench.Figures(ctx, cfg)
		fmt.Fprintf(&report, "\n## %d domains, sink delay %s, 4xx %.1f%%, 5xx %.1f%%, 4 KB messages\n\n%s", sh.domains, sh.delay, *tempFail*100, *permFail*100, rep.Markdown())
		if err != nil {
			fmt.Fprint(env.Stdout, report.String())
			return err
		}
	}
	fmt.Fprint(env.Stdout, report.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

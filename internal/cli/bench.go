package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/bench"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
)

// benchSuites maps a suite name to the measurements it runs.
var benchSuites = map[string]func(ctx context.Context, s *store.Store, n int, p bench.Progress) ([]bench.Result, error){
	"store": func(ctx context.Context, s *store.Store, n int, p bench.Progress) ([]bench.Result, error) {
		single, err := bench.StoreInsert(ctx, s, min(n, 5000), 1, p)
		if err != nil {
			return nil, err
		}
		batch, err := bench.StoreInsert(ctx, s, n*10, 1000, p)
		return []bench.Result{single, batch}, err
	},
	"queue": func(ctx context.Context, s *store.Store, n int, p bench.Progress) ([]bench.Result, error) {
		ins1, err := bench.QueueInsert(ctx, s, min(n, 5000), 1, p)
		if err != nil {
			return nil, err
		}
		ins1000, err := bench.QueueInsert(ctx, s, n, 1000, p)
		if err != nil {
			return nil, err
		}
		worked, err := bench.QueueNoop(ctx, s, n, p)
		return []bench.Result{ins1, ins1000, worked}, err
	},
	"audit": func(ctx context.Context, s *store.Store, n int, p bench.Progress) ([]bench.Result, error) {
		app1, err := bench.AuditAppend(ctx, s, min(n, 5000), 1, p)
		if err != nil {
			return nil, err
		}
		app100, err := bench.AuditAppend(ctx, s, n, 100, p)
		if err != nil {
			return nil, err
		}
		return []bench.Result{app1, app100}, nil
	},
	"audit-verify": func(ctx context.Context, s *store.Store, n int, p bench.Progress) ([]bench.Result, error) {
		r, err := bench.AuditVerify(ctx, s, n, p)
		return []bench.Result{r}, err
	},
	"vault": func(ctx context.Context, s *store.Store, n int, p bench.Progress) ([]bench.Result, error) {
		r, err := bench.VaultSeal(ctx, s, n, 4096)
		return []bench.Result{r}, err
	},
}

func runBench(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 && args[0] == "delivery-figures" {
		return runDeliveryFigures(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "secureline-cost" {
		return runSecureLineCost(ctx, env, args[1:])
	}
	fs := newFlagSet(env, "bench", "bench [--postgres URL] [-n N] [--duration D] [--domains N] [--delay D] SUITE...   (suites: store, queue, audit, audit-verify, vault, auth, delivery, all)\n       sealpost bench delivery-figures --help   (issue 4's delivery figures, with the Postfix comparison)\n       sealpost bench secureline-cost --help    (issue 5: added cost of PGP, S/MIME and portal against TLS only)")
	pgURL := fs.String("postgres", "", "also run on PostgreSQL: a server URL; a scratch database is created there and dropped")
	n := fs.Int("n", 10000, "operations per measurement (audit-verify: events to seed and verify)")
	sqliteOnly := fs.Bool("sqlite-only", false, "skip PostgreSQL even when --postgres or SEALPOST_TEST_POSTGRES is set")
	duration := fs.Duration("duration", 10*time.Second, "auth suite: how long each load runs")
	concurrency := fs.Int("concurrency", 16, "auth suite: concurrent clients")
	domainCount := fs.Int("domains", 20, "delivery suite: destination domains")
	delay := fs.Duration("delay", 0, "delivery suite: the sink's delay before each SMTP reply")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	suites := fs.Args()
	if len(suites) == 0 || (len(suites) == 1 && suites[0] == "all") {
		suites = []string{"store", "queue", "audit", "vault", "auth"}
	}
	for _, name := range suites {
		if benchSuites[name] == nil && name != "auth" && name != "delivery" {
			return fmt.Errorf("unknown suite %q (store, queue, audit, audit-verify, vault, auth, delivery, all)", name)
		}
	}
	if *pgURL == "" && !*sqliteOnly {
		*pgURL = lookupEnv(env.Environ, "SEALPOST_TEST_POSTGRES")
	}
	fmt.Fprintf(env.Stdout, "# sealpost bench %s\n# machine: %s/%s, %d CPUs, %s\n# started: %s\n",
		strings.Join(args, " "), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	dialects := []store.Dialect{store.SQLite}
	if *pgURL != "" && !*sqliteOnly {
		dialects = append(dialects, store.Postgres)
	}
	for _, d := range dialects {
		for _, name := range suites {
			if name == "delivery" {
				if err := runDeliveryBench(ctx, env, d, *pgURL, bench.DeliveryConfig{Messages: *n, Domains: *domainCount, Delay: *delay}); err != nil {
					return fmt.Errorf("delivery on %s: %w", d, err)
				}
				continue
			}
			if name == "auth" {
				if err := runAuthBench(ctx, env, d, *pgURL, *duration, *concurrency); err != nil {
					return fmt.Errorf("auth on %s: %w", d, err)
				}
				continue
			}
			if err := runSuite(ctx, env, d, *pgURL, name, *n); err != nil {
				return fmt.Errorf("%s on %s: %w", name, d, err)
			}
		}
	}
	return nil
}

func runSuite(ctx context.Context, env Env, d store.Dialect, pgURL, name string, n int) error {
	dbURL, cleanup, err := scratchDatabase(ctx, d, pgURL)
	if err != nil {
		return err
	}
	defer cleanup()
	s, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx, store.MigrateOptions{}); err != nil {
		return err
	}
	if err := queue.Migrate(ctx, s, nil); err != nil {
		return err
	}
	last := time.Time{}
	progress := func(what string, done, total int) {
		if time.Since(last) < time.Second && done < total {
			return
		}
		last = time.Now()
		fmt.Fprintf(env.Stderr, "\r%-28s %-8s %3d%% (%d/%d)", what, d, done*100/max(total, 1), done, total)
		if done >= total {
			fmt.Fprintln(env.Stderr)
		}
	}
	results, err := benchSuites[name](ctx, s, n, progress)
	if err != nil {
		return err
	}
	for _, r := range results {
		fmt.Fprintln(env.Stdout, r.String())
	}
	return nil
}

// scratchDatabase returns a fresh database for one suite and its removal.
func scratchDatabase(ctx context.Context, d store.Dialect, pgURL string) (string, func(), error) {
	if d == store.SQLite {
		dir, err := os.MkdirTemp("", "sealpost-bench-")
		if err != nil {
			return "", nil, err
		}
		return "sqlite:" + filepath.Join(dir, "bench.db"), func() { _ = os.RemoveAll(dir) }, nil
	}
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sealpost_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		c, err := pgx.Connect(context.Background(), pgURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// runDeliveryBench measures end-to-end delivery (bench.Delivery) on one
// dialect and prints its figures.
func runDeliveryBench(ctx context.Context, env Env, d store.Dialect, pgURL string, cfg bench.DeliveryConfig) error {
	dbURL, cleanup, err := scratchDatabase(ctx, d, pgURL)
	if err != nil {
		return err
	}
	defer cleanup()
	s, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx, store.MigrateOptions{}); err != nil {
		return err
	}
	if err := queue.Migrate(ctx, s, nil); err != nil {
		return err
	}
	last := time.Time{}
	rep, err := bench.Delivery(ctx, s, cfg, func(what string, done, total int) {
		if time.Since(last) < time.Second && done < total {
			return
		}
		last = time.Now()
		fmt.Fprintf(env.Stderr, "\r%-28s %-8s %3d%% (%d/%d)", what, d, done*100/max(total, 1), done, total)
		if done >= total {
			fmt.Fprintln(env.Stderr)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, rep.Accept.String())
	fmt.Fprintln(env.Stdout, rep.EndToEnd.String())
	fmt.Fprintf(env.Stdout, "%-32s %-9s cpu/1000 msgs %s   p50 %s   p99 %s   (domains %d, sink delay %s)\n", "delivery.latency", d,
		rep.CPUPer1000.Round(time.Millisecond), rep.P50.Round(time.Millisecond), rep.P99.Round(time.Millisecond), cfg.Domains, cfg.Delay)
	return nil
}

// runSecureLineCost is `sealpost bench secureline-cost`: the cost of
// PGP, S/MIME and the portal against TLS only, end to end on one server
// in one run (bench.SecureLineCost; docs/BENCHMARKS.md, "SecureLine cost
// (issue 5)"), printed as a markdown table.
func runSecureLineCost(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "bench secureline-cost", "bench secureline-cost [--postgres URL] [-n 2000] [--domains 4] [--rounds 2] [--attachment-bytes 0] [--smime-signed] [--out FILE]")
	pgURL := fs.String("postgres", "", "run the server on PostgreSQL: a server URL; a scratch database is created there and dropped (default SQLite)")
	n := fs.Int("n", 2000, "messages per variant")
	domainCount := fs.Int("domains", 4, "destination domains, all routed to the one sink")
	bodyBytes := fs.Int("body-bytes", 20000, "size of the text and HTML bodies together")
	attachBytes := fs.Int("attachment-bytes", 0, "add a CSV attachment of this size (0: none)")
	batch := fs.Int("batch", 100, "messages per POST /v1/messages/batch")
	smimeSigned := fs.Bool("smime-signed", true, "also measure S/MIME signed with a sender certificate, then encrypted")
	rounds := fs.Int("rounds", 2, "split each variant's messages over this many rounds, the variants in reverse order in every other round")
	decryptEvery := fs.Int("decrypt-every", 0, "the sink decrypts every Nth encrypted message (0: about 200 per variant)")
	inProcess := fs.Bool("in-process", false, "run the server inside this process (its CPU figure then includes the load generator and sink)")
	dir := fs.String("dir", "", "directory for the run's logs and data (default a new one under the system temporary directory, kept)")
	out := fs.String("out", "", "also write the markdown report to this file")
	var sets multiFlag
	fs.Var(&sets, "set", "extra server configuration, key=value (repeatable), e.g. --set queue.max_workers=50")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := bench.SecureLineConfig{Messages: *n, Domains: *domainCount, BodyBytes: *bodyBytes, AttachmentBytes: *attachBytes, Batch: *batch,
		SMIMESigned: *smimeSigned, Rounds: *rounds, DecryptEvery: *decryptEvery, Dir: *dir, Store: bench.StoreTarget{Name: "sqlite"},
		Log: func(format string, a ...any) {
			fmt.Fprintf(env.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
		}}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--set %q: want key=value", kv)
		}
		cfg.ServerEnv = append(cfg.ServerEnv, "SEALPOST_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))+"="+v)
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "sealpost-secureline-cost-")
		if err != nil {
			return err
		}
		cfg.Dir = d
	}
	if *pgURL != "" {
		url := *pgURL
		cfg.Store = bench.StoreTarget{Name: "postgres", NewDatabase: func(ctx context.Context) (string, func(), error) {
			return scratchDatabase(ctx, store.Postgres, url)
		}}
	}
	cfg.Launch = bench.InProcessLauncher(filepath.Join(cfg.Dir, "server.log"))
	if !*inProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to run the server: %w (or use --in-process)", err)
		}
		cfg.Launch = bench.ExecLauncher(exe, filepath.Join(cfg.Dir, "server.log"))
	}
	var report strings.Builder
	fmt.Fprintf(&report, "# sealpost bench secureline-cost %s\n\nmachine: %s/%s, %d CPUs, %s; store %s; started %s; run directory %s\n\n",
		strings.Join(args, " "), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), cfg.Store.Name,
		time.Now().UTC().Format(time.RFC3339), cfg.Dir)
	rep, err := bench.SecureLineCost(ctx, cfg)
	report.WriteString(rep.Markdown())
	fmt.Fprint(env.Stdout, report.String())
	if err != nil {
		return err
	}
	if *out != "" {
		return os.WriteFile(*out, []byte(report.String()), 0o644)
	}
	return nil
}

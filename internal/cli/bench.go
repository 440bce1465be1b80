package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
	fs := newFlagSet(env, "bench", "bench [--postgres URL] [-n N] [--duration D] [--domains N] [--delay D] SUITE...   (suites: store, queue, audit, audit-verify, vault, auth, delivery, all)\n       sealpost bench delivery-figures --help   (issue 4's delivery figures, with the Postfix comparison)")
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

package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sealpost/sealpost/internal/app"
)

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "serve", "serve [--config FILE] [--data-dir DIR] [--http-addr ADDR] [--dev-tls]")
	var cf configFlags
	cf.register(fs)
	addr := fs.String("http-addr", "", "listen address (http.addr); default 127.0.0.1:8080")
	devTLS := fs.Bool("dev-tls", false, "serve HTTPS with a self-signed certificate kept in the data dir (http.tls.dev)")
	noBootstrap := fs.Bool("no-bootstrap", false, "do not create the first account when the store is empty")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	extra := map[string]string{}
	if *addr != "" {
		extra["http.addr"] = *addr
	}
	if *devTLS {
		extra["http.tls.dev"] = "true"
	}
	cfg, err := cf.load(env, extra)
	if err != nil {
		return err
	}
	logger := app.NewLogger(cfg, env.Stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	if !*noBootstrap {
		if _, err := a.Bootstrap(ctx, env.Stdout, false); err != nil {
			return err
		}
	}
	return a.Serve(ctx, func(bound string) {
		scheme := "http"
		if cfg.HTTP.TLS.Dev || cfg.HTTP.TLS.CertFile != "" {
			scheme = "https"
		}
		if relay := a.SubmissionAddrs; relay[0] != "" || relay[1] != "" {
			fmt.Fprintf(env.Stdout, "SMTP relay: submission %s, implicit TLS %s\n", orOff(relay[0]), orOff(relay[1]))
		}
		fmt.Fprintf(env.Stdout, "Sealpost is up: %s://%s  (console at /console/, API docs at /docs, health at /healthz)\n", scheme, bound)
	})
}

func runMigrate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "migrate", "migrate [--config FILE] [--data-dir DIR] [--database-url URL]")
	var cf configFlags
	cf.register(fs)
	if err := parse(env, fs, args); err != nil {
		return err
	}
	s, err := cf.openStore(ctx, env, func(line string) { fmt.Fprintln(env.Stdout, line) })
	if err != nil {
		return err
	}
	defer s.Close()
	cur, latest, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "database (%s) at schema version %d of %d: up to date\n", s.Dialect(), cur, latest)
	return nil
}

func orOff(addr string) string {
	if addr == "" {
		return "off"
	}
	return addr
}

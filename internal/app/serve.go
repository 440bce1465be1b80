package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/bounce"
	"github.com/sealpost/sealpost/internal/httpapi"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/submission"
)

// Serve starts the job queue and the HTTP server and blocks until ctx ends
// (SIGTERM/SIGINT in the command), then shuts down in order: stop
// accepting requests and finish in-flight ones, then stop the queue,
// letting running jobs finish, all within http.shutdown_timeout. ready,
// when set, is called with the bound address once the listener is open.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	cfg := a.Config
	tlsConf, err := a.tlsConfig()
	if err != nil {
		return err
	}
	admin := account.NewAdmin(a.Store, a.Accounts, a.Audit)
	proxies, err := cfg.HTTP.Proxies()
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	api := httpapi.New(httpapi.Options{
		Logger:         a.Logger.With("component", "http"),
		Registerer:     a.Registry,
		Gatherer:       a.Registry,
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		TLS:            tlsConf != nil,
		Authenticate:   a.Auth.Authenticate,
		Audit:          a.Audit,
		Clients:        admin,
		Policies:       admin,
		Users:          admin,
		Messages:       a.Messages,
		Domains:        a.Domains,
		Webhooks:       a.Webhooks,
		OAuth:          a.OAuth,
		Throttle:       a.Throttle,
		TrustedProxies: proxies,
		Sessions:       a.Sessions,
		Refused:        refusalAuditor{log: a.Audit, logger: a.Logger.With("component", "audit")},
		ReadyChecks: map[string]func(context.Context) error{
			"store":      a.Store.Ping,
			"migrations": a.checkMigrations,
			"queue":      func(context.Context) error { return a.Queue.Running() },
		},
		TrackingSettings: a.Tracking,
		Retention:        a.Retention,
		Templates:        a.Templates,
		Portal:           a.Portal,
		DLP:              a.DLP,
		DLPSettings:      a.DLPSettings,
		Quarantine:       a.Quarantine,
		Keys:             a.Keys,
		SecureLine:       a.SecureLine,
	})
	for pattern, h := range a.Console.Routes() {
		api.Handle(pattern, h)
	}
	for pattern, h := range a.Tracking.Routes() {
		api.Handle(pattern, h)
	}
	for pattern, h := range a.PortalWeb.Routes() {
		api.Handle(pattern, h)
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (http.addr): %w", cfg.HTTP.Addr, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	relay, err := a.startSubmission(tlsConf)
	if err != nil {
		_ = ln.Close()
		return err
	}
	inbound, err := a.startBounce(tlsConf)
	if err != nil {
		_ = ln.Close()
		return errors.Join(err, stopSubmission(relay))
	}
	if err := a.Queue.Start(ctx); err != nil {
		_ = ln.Close()
		return fmt.Errorf("start job queue: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	a.Logger.Info("sealpost serving", "addr", ln.Addr().String(), "scheme", scheme, "dialect", string(a.Store.Dialect()))
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		_ = a.Queue.Stop(context.Background())
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	return a.shutdown(srv, relay, inbound)
}

// Failed authentications tolerated per source address and window before
// the address gets 429s (NIST SP 800-63B §5.2.2 rate limiting). API
// secrets carry 256 bits, so this mostly keeps guessers from loading the
// server; password logins will add per-account limits.
const (
	authFailureLimit  = 30
	authFailureWindow = 5 * time.Minute
)

func (a *App) shutdown(srv *http.Server, relay *submission.Server, inbound *bounce.Server) error {
	start := time.Now()
	a.Logger.Info("shutting down: draining requests and jobs", "deadline", a.Config.HTTP.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), a.Config.HTTP.ShutdownTimeout)
	defer cancel()
	httpErr := srv.Shutdown(ctx)
	if httpErr != nil {
		httpErr = fmt.Errorf("drain http: %w", httpErr)
		_ = srv.Close()
	}
	if inbound != nil {
		if err := inbound.Shutdown(ctx); err != nil {
			httpErr = errors.Join(httpErr, fmt.Errorf("drain bounce listener: %w", err))
		}
	}
	if relay != nil {
		if err := relay.Shutdown(ctx); err != nil {
			httpErr = errors.Join(httpErr, fmt.Errorf("drain submission: %w", err))
		}
	}
	queueErr := a.Queue.Stop(ctx)
	if queueErr != nil {
		queueErr = fmt.Errorf("drain job queue: %w", queueErr)
	}
	a.Logger.Info("shutdown complete", "took_ms", time.Since(start).Milliseconds())
	return errors.Join(httpErr, queueErr)
}

func (a *App) checkMigrations(ctx context.Context) error {
	if err := a.Store.CheckSchema(ctx); err != nil {
		return err
	}
	return queue.CheckMigrated(ctx, a.Store)
}

func (a *App) tlsConfig() (*tls.Config, error) {
	t := a.Config.HTTP.TLS
	switch {
	case t.Dev:
		cert, key, err := httpapi.DevCertificate(a.Config.DataDir)
		if err != nil {
			return nil, fmt.Errorf("dev TLS certificate: %w", err)
		}
		a.Logger.Warn("serving with a self-signed development certificate (http.tls.dev); do not use in production")
		return httpapi.TLSConfig(cert, key)
	case t.CertFile != "":
		return httpapi.TLSConfig(t.CertFile, t.KeyFile)
	}
	return nil, nil
}

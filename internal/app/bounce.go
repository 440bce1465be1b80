package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/sealpost/sealpost/internal/bounce"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/submission"
	"github.com/sealpost/sealpost/internal/vault"
)

// newReturnPaths returns the return-path signer for bounce.domain, or nil
// when it is unset.
func newReturnPaths(ctx context.Context, cfg config.Config, s *store.Store, master vault.MasterKey) (*bounce.Signer, error) {
	if cfg.Bounce.Domain == "" {
		return nil, nil
	}
	key, err := bounce.LoadKey(ctx, s, master)
	if err != nil {
		return nil, err
	}
	signer, err := bounce.NewSigner(key, strings.TrimSuffix(strings.ToLower(cfg.Bounce.Domain), "."))
	if err != nil {
		return nil, fmt.Errorf("bounce.domain: %w", err)
	}
	return signer, nil
}

// returnPathFunc is the delivery engine's ReturnPath: nil without a
// signer, so the engine keeps the From address.
func returnPathFunc(s *bounce.Signer) func(accountID, messageID, from string, rcptIndex int) string {
	if s == nil {
		return nil
	}
	return s.ReturnPath
}

// startBounce binds and serves the bounce listener (bounce.addr), with
// STARTTLS when the server has a certificate.
func (a *App) startBounce(tlsConf *tls.Config) (*bounce.Server, error) {
	addr := a.Config.Bounce.Addr
	if addr == "off" || addr == "" || a.Bounces == nil {
		return nil, nil
	}
	proc, err := bounce.NewProcessor(a.Store, bounce.Options{Logger: a.Logger.With("component", "bounce"), Registerer: a.Registry})
	if err != nil {
		return nil, err
	}
	srv := bounce.NewServer(bounce.ServerOptions{Addr: addr, TLS: tlsConf, Hostname: a.Config.Delivery.HeloName,
		Logger: a.Logger.With("component", "bounce")}, a.Bounces, proc)
	bound, err := srv.Listen()
	if err != nil {
		return nil, fmt.Errorf("bounce.addr: %w", err)
	}
	srv.Serve()
	a.Logger.Info("bounce listener serving", "addr", bound, "domain", a.Bounces.Domain())
	a.BounceAddr = bound
	return srv, nil
}

// stopSubmission stops the relay when a later start step fails.
func stopSubmission(relay *submission.Server) error {
	if relay == nil {
		return nil
	}
	return relay.Shutdown(context.Background())
}

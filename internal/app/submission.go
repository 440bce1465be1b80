package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/submission"
)

// startSubmission binds and serves the SMTP relay. A listener left at its
// default address that cannot be bound (ports below 1024 need privileges,
// or another MTA holds them) is skipped with a warning, so the quick start
// works unprivileged; an address the operator chose must bind.
func (a *App) startSubmission(tlsConf *tls.Config) (*submission.Server, error) {
	cfg, def := a.Config.Submission, config.Default().Submission
	addrs := map[string]*string{"submission.addr": &cfg.Addr, "submission.tls_addr": &cfg.TLSAddr}
	for key, addr := range addrs {
		if *addr == "off" {
			*addr = ""
		}
		if key == "submission.tls_addr" && *addr != "" && tlsConf == nil {
			if *addr != def.TLSAddr {
				return nil, fmt.Errorf("submission.tls_addr: implicit TLS needs a certificate (http.tls.*)")
			}
			*addr = ""
		}
	}
	for key, addr := range addrs {
		if *addr == "" {
			continue
		}
		probe, err := net.Listen("tcp", *addr)
		if err == nil {
			_ = probe.Close()
			continue
		}
		if (*addr == def.Addr || *addr == def.TLSAddr) && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EADDRINUSE)) {
			a.Logger.Warn("SMTP relay listener not started", "key", key, "addr", *addr, "error", err.Error())
			*addr = ""
			continue
		}
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if cfg.Addr == "" && cfg.TLSAddr == "" {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(cfg.Addr)
	ip := net.ParseIP(host)
	relay := submission.New(submission.Options{
		Addr: cfg.Addr, TLSAddr: cfg.TLSAddr, TLS: tlsConf, Hostname: a.Config.Delivery.HeloName,
		AllowInsecureAuth: tlsConf == nil && ip != nil && ip.IsLoopback(),
		RatePerMinute:     cfg.RatePerMinute, Logger: a.Logger.With("component", "submission"),
	}, a.Accounts, a.Accounts, a.Messages, a.Throttle)
	submit, implicit, err := relay.Listen()
	if err != nil {
		return nil, fmt.Errorf("submission: %w", err)
	}
	relay.Serve()
	a.Logger.Info("SMTP relay listening", "submission", submit, "implicit_tls", implicit)
	a.SubmissionAddrs = [2]string{submit, implicit}
	return relay, nil
}

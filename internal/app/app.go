// Package app is Sealpost's composition root: it builds every component
// from the configuration, passes dependencies explicitly, and runs the
// server until its context ends, then drains. No other package reads
// configuration or constructs another package's components.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/bounce"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/console"
	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/dlpsettings"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/login"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/mfa"
	"github.com/sealpost/sealpost/internal/oauth"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/retention"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/session"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/templates"
	"github.com/sealpost/sealpost/internal/tracking"
	"github.com/sealpost/sealpost/internal/vault"
	"github.com/sealpost/sealpost/internal/webhooks"
)

// App holds the running components.
type App struct {
	Config   config.Config
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Store    *store.Store
	Vault    *vault.Vault
	Audit    *audit.Log
	Accounts *account.Store
	Queue    *queue.Queue
	Sessions *session.Manager
	OAuth    *oauth.Server
	Auth     *auth.Authenticator
	MFA      *mfa.Manager
	Logins   *login.Service
	// Throttle counts failed authentications per source address across
	// the API, the token endpoint and the console.
	Throttle *auth.Throttle
	Console  *console.Console
	Domains  *domains.Service
	Messages *messages.Service
	// Templates are the accounts' stored message templates.
	Templates *templates.Service
	// Tracking serves the open, click and unsubscribe endpoints.
	Tracking *tracking.Service
	Delivery *delivery.Engine
	// Webhooks delivers message events to customers' endpoints.
	Webhooks *webhooks.Service
	// Portal is the recipient portal (deposits, sessions, sweeps) and
	// PortalWeb its pages under /p/.
	Portal    *portal.Service
	PortalWeb *portal.Web
	// Retention holds the accounts' retention periods; Shredder is the
	// sweeper that crypto-shreds what outlived them.
	Retention *retention.Service
	Shredder  *retention.Sweeper
	// DLP holds the accounts' DLP rules and decides per recipient;
	// Quarantine keeps the review state of quarantined messages.
	DLP        *policy.Engine
	Quarantine *policy.QuarantineStore
	// DLPSettings holds the accounts' DLP terms and record number
	// formats and the compiled scanner of each.
	DLPSettings *dlpsettings.Service
	// Keys holds the accounts' recipient PGP keys and S/MIME
	// certificates and sender S/MIME signing certificates.
	Keys *keys.Service
	// SecureLine decides each recipient's encryption (preflight,
	// settings; the send and delivery paths integrate it later).
	SecureLine *secureline.Service
	// SubmissionAddrs are the bound relay listeners (submission, implicit
	// TLS), once serving; empty when off.
	SubmissionAddrs [2]string
	// Bounces signs return paths (nil without bounce.domain).
	Bounces *bounce.Signer
	// BounceAddr is the bound bounce listener, once serving; empty when
	// off.
	BounceAddr string
}

// NewLogger returns the JSON (or text) slog logger the config asks for.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// OpenStore opens the configured database and applies pending migrations
// (ours, then River's). progress, when set, receives one line per step.
func OpenStore(ctx context.Context, cfg config.Config, progress func(string)) (*store.Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	s, err := store.Open(ctx, cfg.DatabaseURL(), store.Options{
		MaxConns:      cfg.Database.MaxConns,
		SQLiteReaders: cfg.Database.SQLiteReaders,
		BusyTimeout:   cfg.Database.BusyTimeout,
	})
	if err != nil {
		return nil, err
	}
	say := func(format string, args ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, args...))
		}
	}
	_, err = s.Migrate(ctx, store.MigrateOptions{Progress: func(m store.Migration, took time.Duration) {
		say("applied migration %04d_%s (%s)", m.Version, m.Name, took)
	}})
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := queue.Migrate(ctx, s, func(v int) { say("applied job queue migration %d", v) }); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("migrate job queue: %w", err)
	}
	return s, nil
}

// Open builds every component over an open, migrated store.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	s, err := OpenStore(ctx, cfg, func(line string) { logger.Info(line) })
	if err != nil {
		return nil, err
	}
	a, err := build(ctx, cfg, logger, s)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return a, nil
}

func build(ctx context.Context, cfg config.Config, logger *slog.Logger, s *store.Store) (*App, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(newStoreCollector(s))

	master, err := openMasterKey(ctx, cfg, s)
	if err != nil {
		return nil, err
	}
	accounts := account.NewStore(s)
	q, err := queue.New(s, queue.Options{
		Logger:       logger.With("component", "queue"),
		Registerer:   reg,
		MaxWorkers:   cfg.Queue.MaxWorkers,
		PollInterval: cfg.Queue.PollInterval,
		JobTimeout:   cfg.Queue.JobTimeout,
	})
	if err != nil {
		return nil, err
	}
	auditLog := audit.New(s, audit.Options{})
	v := vault.New(s, master, vault.Options{})
	sessions := session.New(s, v, auditLog, session.Options{})
	factors := mfa.New(s, v, "Sealpost")
	logins := login.New(s, factors, auditLog)
	throttle := auth.NewThrottle(authFailureLimit, authFailureWindow)
	tokens, err := oauth.New(ctx, oauth.Deps{DB: s, Master: master, Clients: accounts, Policies: accounts,
		Users: accounts, Logins: logins, Audit: auditLog, Throttle: throttle})
	if err != nil {
		return nil, err
	}
	servers, err := cfg.DNS.ServerList()
	if err != nil {
		return nil, fmt.Errorf("dns.servers: %w", err)
	}
	resolver := resolve.New(servers)
	helo := cfg.Delivery.HeloName
	if helo == "" {
		helo, _ = os.Hostname()
	}
	sendingDomains := domains.New(s, v, resolver, auditLog, helo)
	trk, err := newTracking(ctx, cfg, s, v, master, auditLog, logger)
	if err != nil {
		return nil, err
	}
	tmpls := templates.New(s, templates.Options{})
	// SecureLine at acceptance; filled by wireAcceptance once the policy,
	// quarantine, keys and portal it uses exist (they depend on msgs).
	accept := &messages.SecureLine{}
	msgs := messages.New(s, v, sendingDomains, q, messages.Options{Lifetime: cfg.Delivery.Lifetime, Templates: tmpls, Tracker: trk,
		SecureLine: accept})
	returnPaths, err := newReturnPaths(ctx, cfg, s, master)
	if err != nil {
		return nil, err
	}
	engine, err := newDeliveryEngine(cfg, s, v, sendingDomains, resolver, helo, returnPathFunc(returnPaths), logger, reg)
	if err != nil {
		return nil, err
	}
	consoleSessions := console.NewSessions(s, cfg.Console.IdleTimeout, cfg.Console.AbsoluteTimeout)
	web, err := console.New(console.Deps{Sessions: consoleSessions, Logins: logins, MFA: factors, Policies: accounts,
		Accounts: accounts, Audit: auditLog, Throttle: throttle, Logger: logger.With("component", "console")})
	if err != nil {
		return nil, err
	}
	if err := registerJobs(q, auditLog, sessions, consoleSessions, tokens, logger, reg); err != nil {
		return nil, err
	}
	if err := registerDeliveryJobs(q, engine); err != nil {
		return nil, err
	}
	hooks, err := newWebhooks(cfg, s, v, auditLog, q, logger, reg)
	if err != nil {
		return nil, err
	}
	policies, shredder, err := newRetention(s, auditLog, q, logger, reg)
	if err != nil {
		return nil, err
	}
	portalSvc, portalWeb, err := newPortal(ctx, cfg, s, v, master, q, auditLog, msgs, sendingDomains, accounts, policies, logger)
	if err != nil {
		return nil, err
	}
	if err := registerPortalJobs(q, portalSvc); err != nil {
		return nil, err
	}
	// Each account's DLP terms and record number formats, compiled once
	// per settings version and shared by acceptance and the dry run.
	dlpSettings, err := dlpsettings.New(s, auditLog, dlpsettings.Options{})
	if err != nil {
		return nil, err
	}
	dlpPolicies, err := policy.New(s, auditLog, policy.Options{Scanners: dlpSettings})
	if err != nil {
		return nil, err
	}
	// The send path holds quarantined messages and acts on reviews.
	quarantine := policy.NewQuarantine(s, auditLog, policy.QuarantineOptions{Hook: msgs})
	keyStore, err := newKeys(cfg, s, v, auditLog)
	if err != nil {
		return nil, err
	}
	// Uploaded keys first, then the Web Key Directory for accounts that
	// enabled it, alike for decisions, preflight and delivery.
	finder, err := newKeyFinder(cfg, s, keyStore, resolver, q, logger, reg)
	if err != nil {
		return nil, err
	}
	wireDelivery(engine, s, finder, portalSvc)
	encryption, err := newSecureLine(s, auditLog, engine, finder, dlpPolicies, dlpSettings)
	if err != nil {
		return nil, err
	}
	if err := wireAcceptance(accept, s, dlpSettings, dlpPolicies, quarantine, finder, portalSvc); err != nil {
		return nil, err
	}
	return &App{
		Config:   cfg,
		Logger:   logger,
		Registry: reg,
		Store:    s,
		Vault:    v,
		Sessions: sessions,
		Audit:    auditLog,
		Accounts: accounts,
		Queue:    q,
		OAuth:    tokens,
		Auth:     &auth.Authenticator{Clients: accounts, Sessions: sessions, Tokens: tokens, Policies: accounts, Console: web},
		Console:  web,
		Domains:  sendingDomains,
		Messages: msgs,
		Tracking: trk,
		Delivery: engine,
		Webhooks: hooks,
		Bounces:  returnPaths,
		MFA:      factors,
		Logins:   logins,
		Throttle: throttle,

		Templates: tmpls,
		Retention: policies,
		Shredder:  shredder,

		DLP:        dlpPolicies,
		Quarantine: quarantine,
		Keys:       keyStore,
		SecureLine: encryption,

		DLPSettings: dlpSettings,

		Portal:    portalSvc,
		PortalWeb: portalWeb,
	}, nil
}

// openMasterKey loads the master key file, creating it only while the
// store holds no wrapped account keys: a missing key with existing data
// means the data is unreadable, which must stop the start, not be papered
// over with a fresh key.
func openMasterKey(ctx context.Context, cfg config.Config, s *store.Store) (vault.MasterKey, error) {
	has, err := vault.HasAccountKeys(ctx, s)
	if err != nil {
		return nil, err
	}
	path := cfg.MasterKeyFile()
	mk, err := vault.LoadOrCreateFileMasterKey(path, !has)
	if errors.Is(err, vault.ErrMasterKeyMissing) {
		return nil, fmt.Errorf("master key file %s is missing but the database holds encrypted account keys; restore the key file (vault.master_key_file) from backup: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	return mk, nil
}

// Bootstrap creates the first account when the store is empty and prints
// its credentials once to out, also writing them to a 0600 file in the
// data directory so they are not lost with the terminal.
func (a *App) Bootstrap(ctx context.Context, out io.Writer, force bool) (bool, error) {
	creds, created, err := account.Bootstrap(ctx, a.Store, a.Accounts, a.Audit, account.BootstrapOptions{
		AccountName: a.Config.Bootstrap.AccountName,
		OwnerEmail:  a.Config.Bootstrap.OwnerEmail,
		Force:       force,
	})
	if err != nil || !created {
		return false, err
	}
	// Every account gets its data key at birth, so a lost master key is
	// noticed at the next start rather than at the first sealed message.
	if err := a.Vault.EnsureAccountKey(ctx, creds.AccountID); err != nil {
		return true, fmt.Errorf("create account data key: %w", err)
	}
	path := filepath.Join(a.Config.DataDir, "bootstrap-credentials-"+creds.AccountID+".txt")
	var b strings.Builder
	_, _ = creds.WriteTo(&b)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return true, fmt.Errorf("save bootstrap credentials: %w", err)
	}
	fmt.Fprintf(out, "\nSealpost bootstrap: first account created. These secrets are shown once;\na copy is in %s (mode 0600): move it somewhere safe.\n\n%s\n", path, b.String())
	return true, nil
}

// Close closes pooled SMTP connections and releases the store.
func (a *App) Close() error {
	if a.Delivery != nil {
		a.Delivery.Close()
	}
	return a.Store.Close()
}

// auditVerifyInterval is how often the leader verifies every audit chain.
const auditVerifyInterval = 24 * time.Hour

// registerJobs adds every worker and periodic job; they must all be known
// before the queue starts.
func registerJobs(q *queue.Queue, log *audit.Log, sessions *session.Manager, consoleSessions *console.Sessions, tokens *oauth.Server,
	logger *slog.Logger, reg prometheus.Registerer) error {
	verifier, err := audit.NewVerifyWorker(log, logger.With("component", "audit"), reg)
	if err != nil {
		return err
	}
	if err := queue.AddWorker(q, verifier); err != nil {
		return err
	}
	if err := q.AddPeriodic(auditVerifyInterval, func() river.JobArgs { return audit.VerifyArgs{} }, true); err != nil {
		return err
	}
	if err := queue.AddWorker(q, &session.SweepWorker{Sessions: sessions}); err != nil {
		return err
	}
	if err := q.AddPeriodic(session.SweepInterval, func() river.JobArgs { return session.SweepArgs{} }, false); err != nil {
		return err
	}
	if err := queue.AddWorker(q, &console.SweepWorker{Sessions: consoleSessions}); err != nil {
		return err
	}
	if err := q.AddPeriodic(console.SweepInterval, func() river.JobArgs { return console.SweepArgs{} }, false); err != nil {
		return err
	}
	if err := queue.AddWorker(q, &oauth.SweepWorker{Server: tokens}); err != nil {
		return err
	}
	return q.AddPeriodic(oauth.SweepInterval, func() river.JobArgs { return oauth.SweepArgs{} }, false)
}

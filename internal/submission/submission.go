// Package submission is the SMTP relay for applications (RFC 6409
// message submission): port 587 with STARTTLS and port 465 with implicit
// TLS (RFC 8314), AUTH PLAIN and LOGIN with an API client's id and secret,
// per-client rate limits, and acceptance (250) only once the message is
// durable. Relayed messages take the same path as API messages.
package submission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/messages"
)

// Sender accepts relayed messages.
type Sender interface {
	SendRaw(ctx context.Context, actor account.Actor, rcpts []string, raw []byte) (messages.Accepted, error)
}

// Options configure the relay.
type Options struct {
	// Addr is the submission listener (STARTTLS); empty disables it.
	Addr string
	// TLSAddr is the implicit-TLS listener; empty disables it.
	TLSAddr string
	// TLS is the server certificate configuration; nil offers no TLS
	// (and TLSAddr cannot be used).
	TLS *tls.Config
	// Hostname is the name in the greeting.
	Hostname string
	// AllowInsecureAuth accepts AUTH without TLS (loopback only).
	AllowInsecureAuth bool
	// RatePerMinute bounds the messages one client relays per minute.
	RatePerMinute int
	Logger        *slog.Logger
}

// Server is the relay.
type Server struct {
	opts     Options
	clients  auth.ClientLookup
	policies auth.PolicyLookup
	sender   Sender
	throttle *auth.Throttle
	limiter  *limiter
	servers  []*smtp.Server
	lns      []net.Listener
}

// New returns the relay; Listen binds it.
func New(opts Options, clients auth.ClientLookup, policies auth.PolicyLookup, sender Sender, throttle *auth.Throttle) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RatePerMinute <= 0 {
		opts.RatePerMinute = 600
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	return &Server{opts: opts, clients: clients, policies: policies, sender: sender, throttle: throttle,
		limiter: &limiter{per: opts.RatePerMinute, counts: map[string]int{}}}
}

// Listen binds the configured listeners and returns their addresses
// (submission first, then implicit TLS; empty when disabled).
func (s *Server) Listen() (string, string, error) {
	var addrs [2]string
	for i, spec := range []struct {
		addr     string
		implicit bool
	}{{s.opts.Addr, false}, {s.opts.TLSAddr, true}} {
		if spec.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", spec.addr)
		if err != nil {
			s.closeListeners()
			return "", "", err
		}
		if spec.implicit {
			if s.opts.TLS == nil {
				_ = ln.Close()
				s.closeListeners()
				return "", "", errors.New("submission: implicit TLS needs a certificate")
			}
			ln = tls.NewListener(ln, s.opts.TLS)
		}
		srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
		srv.Domain = s.opts.Hostname
		srv.ErrorLog = slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug)
		srv.MaxMessageBytes = messages.MaxMessageBytes
		srv.MaxRecipients = messages.MaxRawRecipients
		srv.ReadTimeout = 5 * time.Minute
		srv.WriteTimeout = 5 * time.Minute
		srv.AllowInsecureAuth = s.opts.AllowInsecureAuth
		srv.EnableSMTPUTF8 = true
		srv.TLSConfig = s.opts.TLS
		s.servers = append(s.servers, srv)
		s.lns = append(s.lns, ln)
		addrs[i] = ln.Addr().String()
	}
	return addrs[0], addrs[1], nil
}

func (s *Server) closeListeners() {
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	s.lns, s.servers = nil, nil
}

// Serve serves the bound listeners until Shutdown.
func (s *Server) Serve() {
	for i, srv := range s.servers {
		go func() {
			if err := srv.Serve(s.lns[i]); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				s.opts.Logger.Error("submission listener stopped", "error", err)
			}
		}()
	}
}

// Shutdown stops accepting and waits for sessions to end.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// session is one SMTP session.
type session struct {
	srv    *Server
	conn   *smtp.Conn
	actor  *account.Actor
	rcpts  []string
	source string
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	source := c.Conn().RemoteAddr().String()
	if host, _, err := net.SplitHostPort(source); err == nil {
		source = host
	}
	return &session{srv: s, conn: c, source: source}, nil
}

// AuthMechanisms implements smtp.AuthSession.
func (x *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth implements smtp.AuthSession.
func (x *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return smtp.ErrAuthFailed
			}
			return x.authenticate(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: x.authenticate}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// authenticate checks an API client's id and secret (constant time, the
// same answer for every failure), the account's policy and the client's
// messages:send scope.
func (x *session) authenticate(id, secret string) error {
	if wait, blocked := x.srv.throttle.Blocked(x.source); blocked {
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: fmt.Sprintf("too many failed authentications; retry in %d seconds", int(wait.Seconds())+1)}
	}
	fail := func(reason string) error {
		x.srv.throttle.Fail(x.source)
		x.srv.opts.Logger.Info("submission authentication refused", "source", x.source, "reason", reason)
		return smtp.ErrAuthFailed
	}
	cred, err := x.srv.clients.ClientCredential(context.Background(), id)
	if err != nil {
		auth.SecretMatches(auth.HashSecret("unknown"), secret)
		return fail("unknown client")
	}
	if !auth.SecretMatches(cred.SecretHash, secret) || cred.Revoked || !cred.AccountActive {
		return fail("wrong secret, revoked client or inactive account")
	}
	p := auth.Principal{AccountID: cred.AccountID, ActorKind: auth.ActorClient, ActorID: cred.ID, Role: cred.Role, Scopes: cred.Scopes}
	if !p.Has(auth.ScopeMessagesSend) {
		return fail("client lacks messages:send")
	}
	policy, err := x.srv.policies.AuthPolicy(context.Background(), cred.AccountID)
	if err != nil {
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure; try again"}
	}
	if ip, perr := netip.ParseAddr(x.source); perr == nil {
		if ok, why := policy.Allows(auth.SchemeBasic, ip.Unmap()); !ok {
			return fail(why)
		}
	}
	x.actor = &account.Actor{Principal: p, SourceIP: x.source}
	return nil
}

// Mail implements smtp.Session.
func (x *session) Mail(string, *smtp.MailOptions) error {
	if x.actor == nil {
		return smtp.ErrAuthRequired
	}
	if !x.srv.limiter.allow(x.actor.Principal.ActorID, time.Now()) {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "rate limit reached; retry in a minute"}
	}
	return nil
}

// Rcpt implements smtp.Session.
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.actor == nil {
		return smtp.ErrAuthRequired
	}
	if _, err := mail.ParseAddress("rcpt", to); err != nil {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "invalid recipient address"}
	}
	x.rcpts = append(x.rcpts, to)
	return nil
}

// Data implements smtp.Session: 250 only after the message is committed.
func (x *session) Data(r io.Reader) error {
	if x.actor == nil {
		return smtp.ErrAuthRequired
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp answers 552 for an oversized message
	}
	_, err = x.srv.sender.SendRaw(context.Background(), *x.actor, x.rcpts, raw)
	var fe *mail.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "message refused: " + fe.Error()}
	case errors.Is(err, messages.ErrTooLarge):
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too large"}
	case errors.Is(err, messages.ErrBlocked), errors.Is(err, messages.ErrEncryptionUnavailable):
		// RFC 3463 §3.8: X.7.1 "delivery not authorized, message refused";
		// the text stays generic (the rule is the account's business).
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message refused by the account's security policy"}
	}
	x.srv.opts.Logger.Error("submission: accept message", "error", err)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure; the message was not accepted, retry"}
}

// Reset implements smtp.Session.
func (x *session) Reset() { x.rcpts = nil }

// Logout implements smtp.Session.
func (x *session) Logout() error { return nil }

// loginServer is the LOGIN SASL mechanism (draft-murchison-sasl-login):
// the server asks for the user name, then the password.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case response == nil && !l.gotUser && l.user == "":
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	case !l.finished:
		l.finished = true
		return nil, true, l.check(l.user, string(response))
	}
	return nil, true, errors.New("unexpected response")
}

// limiter counts messages per client per minute (a fixed window).
type limiter struct {
	mu     sync.Mutex
	per    int
	minute int64
	counts map[string]int
}

func (l *limiter) allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := now.Unix() / 60; m != l.minute {
		l.minute, l.counts = m, map[string]int{}
	}
	if l.counts[client] >= l.per {
		return false
	}
	l.counts[client]++
	return true
}

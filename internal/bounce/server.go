package bounce

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// ServerOptions configure the listener.
type ServerOptions struct {
	// Addr is the host:port to listen on.
	Addr string
	// TLS, when set, is offered with STARTTLS (RFC 3207).
	TLS *tls.Config
	// Hostname is the name in the greeting.
	Hostname string
	// MaxBytes bounds a received message (default 10 MiB): a DSN returns
	// at most the original's header or the original itself.
	MaxBytes int64
	// Timeout bounds each command and the data (default 2 minutes).
	Timeout time.Duration
	Logger  *slog.Logger
}

// maxRecipients bounds RCPT per transaction: a report goes to one
// return path; a few allow for the odd duplicate.
const maxRecipients = 10

// Server is the inbound SMTP listener for return paths: it takes mail
// only for b+<token>@<bounce domain> (no AUTH, no relay) and applies the
// reports it receives.
type Server struct {
	opts   ServerOptions
	signer *Signer
	proc   *Processor
	srv    *smtp.Server
	ln     net.Listener
}

// NewServer returns the listener; Listen binds it.
func NewServer(opts ServerOptions, signer *Signer, proc *Processor) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 10 << 20
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.Hostname == "" {
		opts.Hostname = signer.Domain()
	}
	return &Server{opts: opts, signer: signer, proc: proc}
}

// Listen binds the address and returns it.
func (s *Server) Listen() (string, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return "", err
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }))
	srv.Domain = s.opts.Hostname
	srv.ErrorLog = slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug)
	srv.MaxMessageBytes = s.opts.MaxBytes
	srv.MaxRecipients = maxRecipients
	srv.ReadTimeout = s.opts.Timeout
	srv.WriteTimeout = s.opts.Timeout
	srv.EnableSMTPUTF8 = true
	srv.TLSConfig = s.opts.TLS
	s.srv, s.ln = srv, ln
	return ln.Addr().String(), nil
}

// Serve serves the bound listener until Shutdown.
func (s *Server) Serve() {
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			s.opts.Logger.Error("bounce listener stopped", "error", err)
		}
	}()
}

// Shutdown stops accepting and waits for sessions to end, closing them
// when ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}

// session is one SMTP session. It implements no AUTH (go-smtp offers
// AUTH only to sessions that do): nobody logs in to a return path.
type session struct {
	srv    *Server
	tokens []Token
}

// Mail implements smtp.Session: a DSN comes from the null reverse-path
// (RFC 3464 §2, RFC 5321 §4.5.5), a feedback report from anyone.
func (x *session) Mail(string, *smtp.MailOptions) error { return nil }

// errNoSuchUser answers RCPT to anything this server did not hand out.
var errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}

// Rcpt implements smtp.Session.
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	local, domain, ok := cutAddress(to)
	if !ok || !strings.EqualFold(domain, x.srv.signer.Domain()) {
		x.srv.proc.Count(ResultRefused)
		return errNoSuchUser
	}
	tok, err := x.srv.signer.Parse(local)
	if err != nil {
		x.srv.proc.Count(ResultRefused)
		return errNoSuchUser
	}
	x.tokens = append(x.tokens, tok)
	return nil
}

func cutAddress(addr string) (string, string, bool) {
	addr = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(addr), "<"), ">")
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// Data implements smtp.Session. What cannot be parsed is accepted and
// dropped: refusing it would only make the remote retry, then send us a
// bounce of the bounce. Only a store failure answers 451, so the remote
// tries again later.
func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp answers 552 for an oversized message
	}
	rep, err := Parse(raw)
	if err != nil || rep.Kind == "" {
		for range x.tokens {
			x.srv.proc.Count(ResultIgnored)
		}
		return nil
	}
	for _, tok := range x.tokens {
		if _, err := x.srv.proc.Apply(context.Background(), tok, rep); err != nil {
			x.srv.opts.Logger.Error("bounce: apply report", "kind", rep.Kind, "error", err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure; try again later"}
		}
	}
	return nil
}

// Reset implements smtp.Session.
func (x *session) Reset() { x.tokens = nil }

// Logout implements smtp.Session.
func (x *session) Logout() error { return nil }

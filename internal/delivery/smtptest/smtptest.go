// Package smtptest is a receiving SMTP server on loopback for tests and
// benchmarks (go-smtp): it records what it is sent, offers STARTTLS with a
// certificate the caller makes with Certificate (or speaks implicit TLS,
// StartTLS), can require AUTH PLAIN or LOGIN, and can be told to delay
// replies or refuse recipients and messages. Scripted is a server that
// misbehaves on purpose (refusals at any stage, hang-ups mid-DATA, broken
// TLS) for fault tests.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the sink accepted.
type Received struct {
	From  string
	Rcpts []string
	Data  []byte
	TLS   bool
	At    time.Time // when the sink answered 250
	// AuthUser is the user name the client authenticated as ("" none).
	AuthUser string
}

// Sink is a recording SMTP server.
type Sink struct {
	Addr string

	mu       sync.Mutex
	received []Received
	// RcptReply, when set, answers RCPT TO for an address; nil accepts.
	RcptReply func(rcpt string) *smtp.SMTPError
	// DataReply, when set, answers the end of DATA; nil accepts.
	DataReply func() *smtp.SMTPError
	// Delay is added before every reply to MAIL, RCPT and DATA.
	Delay time.Duration
	// Username and Password, when set, make AUTH (PLAIN and LOGIN)
	// required before MAIL.
	Username, Password string
	// AuthMechs, when set, are the mechanisms offered (default PLAIN and
	// LOGIN).
	AuthMechs []string

	srv *smtp.Server
	ln  net.Listener
}

// Start listens on a free loopback port. With cert set, STARTTLS is
// offered (TLS 1.2 minimum).
func Start(cert *tls.Certificate) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return serve(ln, cert), nil
}

// StartTLS listens on a free loopback port speaking implicit TLS (RFC
// 8314 §3, as on port 465) with cert.
func StartTLS(cert tls.Certificate) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil), nil
}

func serve(ln net.Listener, cert *tls.Certificate) *Sink {
	s := &Sink{Addr: ln.Addr().String(), ln: ln}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{sink: s, conn: c}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // clients hanging up are expected in tests
	s.srv.AllowInsecureAuth = true
	s.srv.EnableSMTPUTF8 = true
	s.srv.MaxRecipients = 1000
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	if cert != nil {
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// Close stops the server.
func (s *Sink) Close() { _ = s.srv.Close() }

// Messages returns a copy of what was received.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Count returns how many messages were received.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

// Set changes the behaviour under the lock (for use while running).
func (s *Sink) Set(f func(*Sink)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

type session struct {
	sink  *Sink
	conn  *smtp.Conn
	from  string
	rcpts []string
	user  string // authenticated as
}

// AuthMechanisms implements smtp.AuthSession.
func (x *session) AuthMechanisms() []string {
	x.sink.mu.Lock()
	defer x.sink.mu.Unlock()
	if x.sink.Username == "" {
		return nil
	}
	if x.sink.AuthMechs != nil {
		return x.sink.AuthMechs
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements smtp.AuthSession.
func (x *session) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		x.sink.mu.Lock()
		ok := username == x.sink.Username && password == x.sink.Password
		x.sink.mu.Unlock()
		if !ok {
			return smtp.ErrAuthFailed
		}
		x.user = username
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, username, password string) error { return check(username, password) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of the LOGIN mechanism (user name and
// password each asked for in turn; draft-murchison-sasl-login).
type loginServer struct {
	check    func(username, password string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if response != nil { // an initial response is the user name
			l.username = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.username = string(response)
		return []byte("Password:"), false, nil
	case 3:
		return nil, true, l.check(l.username, string(response))
	}
	return nil, false, errors.New("unexpected LOGIN response")
}

func (x *session) behaviour() (func(string) *smtp.SMTPError, func() *smtp.SMTPError, time.Duration) {
	x.sink.mu.Lock()
	defer x.sink.mu.Unlock()
	return x.sink.RcptReply, x.sink.DataReply, x.sink.Delay
}

func (x *session) Reset()        { x.from, x.rcpts = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	_, _, delay := x.behaviour()
	time.Sleep(delay)
	if x.AuthMechanisms() != nil && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	rcptReply, _, delay := x.behaviour()
	time.Sleep(delay)
	if rcptReply != nil {
		if e := rcptReply(to); e != nil {
			return e
		}
	}
	x.rcpts = append(x.rcpts, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, dataReply, delay := x.behaviour()
	time.Sleep(delay)
	if dataReply != nil {
		if e := dataReply(); e != nil {
			return e
		}
	}
	_, isTLS := x.conn.TLSConnectionState()
	x.sink.mu.Lock()
	x.sink.received = append(x.sink.received, Received{From: x.from, Rcpts: x.rcpts, Data: b, TLS: isTLS, At: time.Now(), AuthUser: x.user})
	x.sink.mu.Unlock()
	return nil
}

// Certificate makes a self-signed ECDSA P-256 certificate for hosts
// (names and IP addresses), and returns it with its PEM, to trust as a
// root.
func Certificate(hosts ...string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return cert, certPEM, err
}

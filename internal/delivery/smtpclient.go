package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Our own SMTP client (RFC 5321) rather than go-smtp's: delivery needs
// the EHLO name of its choosing before a conditional STARTTLS, and
// PIPELINING (RFC 2920) to send MAIL, every RCPT and DATA in one round
// trip, which go-smtp's client does not do.

// reply is an SMTP reply.
type reply struct {
	Code     int
	Enhanced string // "5.1.1", when the server sent one (RFC 3463)
	Text     string
}

func (r reply) String() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	return s + " " + r.Text
}

// errNoStartTLS: the server does not offer STARTTLS.
var errNoStartTLS = errors.New("the server does not offer STARTTLS")

// smtpConn is one SMTP connection.
type smtpConn struct {
	conn     net.Conn
	r        *textproto.Reader
	w        *bufio.Writer
	ext      map[string]string
	host     string // the host name connected to (for TLS and reports)
	tls      *tls.ConnectionState
	verified bool // TLS verified for host: may carry recipients that require it
	timeout  time.Duration
	sent     int       // messages sent on this connection
	lastUsed time.Time // for the idle pool
	// onClose, when set, runs once when the connection closes (it gives
	// back the connection's slot under the connection limits).
	onClose func()
}

// dialSMTP connects to addr, reads the greeting and says EHLO.
func dialSMTP(ctx context.Context, addr, host, helo string, timeout time.Duration) (*smtpConn, error) {
	return dialConn(ctx, addr, host, helo, timeout, nil)
}

// dialConn connects to addr, over implicit TLS (RFC 8314 §3) when cfg is
// set, reads the greeting and says EHLO.
func dialConn(ctx context.Context, addr, host, helo string, timeout time.Duration, cfg *tls.Config) (*smtpConn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var st *tls.ConnectionState
	if cfg != nil {
		tc := tls.Client(conn, cfg)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", host, err)
		}
		s := tc.ConnectionState()
		st, conn = &s, tc
	}
	c := &smtpConn{conn: conn, host: host, timeout: timeout, tls: st}
	c.setConn(conn)
	c.deadline()
	if rep, err := c.read(); err != nil || rep.Code != 220 {
		conn.Close()
		return nil, replyError("greeting", rep, err)
	}
	if err := c.ehlo(helo); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *smtpConn) setConn(conn net.Conn) {
	c.conn = conn
	c.r = textproto.NewReader(bufio.NewReader(conn))
	c.w = bufio.NewWriterSize(conn, 32<<10)
}

func (c *smtpConn) deadline() { _ = c.conn.SetDeadline(time.Now().Add(c.timeout)) }

// read reads one (possibly multi-line) reply.
func (c *smtpConn) read() (reply, error) {
	code, text, err := c.r.ReadResponse(0)
	var tpErr *textproto.Error
	if err != nil && !errors.As(err, &tpErr) {
		return reply{}, err
	}
	rep := reply{Code: code, Text: text}
	// The enhanced code starts each line's text (RFC 2034 §4).
	if f, rest, ok := strings.Cut(text, " "); ok && isEnhanced(f, code) {
		rep.Enhanced, rep.Text = f, rest
	}
	return rep, nil
}

func isEnhanced(s string, code int) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || int(parts[0][0]-'0') != code/100 {
		return false
	}
	for _, p := range parts[1:] {
		if _, err := strconv.Atoi(p); err != nil || len(p) == 0 || len(p) > 3 {
			return false
		}
	}
	return true
}

func (c *smtpConn) cmd(format string, args ...any) (reply, error) {
	c.deadline()
	if _, err := fmt.Fprintf(c.w, format+"\r\n", args...); err != nil {
		return reply{}, err
	}
	if err := c.w.Flush(); err != nil {
		return reply{}, err
	}
	return c.read()
}

// ehlo greets and records the extensions, falling back to HELO (RFC 5321
// §3.2) when EHLO is not understood.
func (c *smtpConn) ehlo(helo string) error {
	rep, err := c.cmd("EHLO %s", helo)
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	if rep.Code == 500 || rep.Code == 502 {
		if rep, err = c.cmd("HELO %s", helo); err != nil || rep.Code != 250 {
			return replyError("HELO", rep, err)
		}
		return nil
	}
	if rep.Code != 250 {
		return replyError("EHLO", rep, nil)
	}
	lines := strings.Split(rep.Text, "\n")
	for _, line := range lines[1:] {
		k, v, _ := strings.Cut(line, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (c *smtpConn) has(ext string) bool { _, ok := c.ext[ext]; return ok }

// startTLS upgrades the connection (RFC 3207) and greets again.
func (c *smtpConn) startTLS(ctx context.Context, cfg *tls.Config, helo string) error {
	if !c.has("STARTTLS") {
		return errNoStartTLS
	}
	rep, err := c.cmd("STARTTLS")
	if err != nil || rep.Code != 220 {
		return replyError("STARTTLS", rep, err)
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake with %s: %w", c.host, err)
	}
	st := tc.ConnectionState()
	c.tls = &st
	c.setConn(tc)
	return c.ehlo(helo)
}

// auth authenticates (RFC 4954) with PLAIN (RFC 4616), or LOGIN when
// the server offers only that. It refuses to send credentials in clear
// text. Errors carry the server's reply, never the credentials.
func (c *smtpConn) auth(username, password string) error {
	if c.tls == nil {
		return errors.New("AUTH: refusing to send credentials without TLS")
	}
	mechs := strings.Fields(strings.ToUpper(c.ext["AUTH"]))
	b64 := base64.StdEncoding.EncodeToString
	switch {
	case slices.Contains(mechs, "PLAIN"):
		// RFC 4616 §2: authzid NUL authcid NUL passwd, as the initial
		// response (RFC 4954 §4).
		rep, err := c.cmd("AUTH PLAIN %s", b64([]byte("\x00"+username+"\x00"+password)))
		if err != nil || rep.Code != 235 {
			return replyError("AUTH PLAIN", rep, err)
		}
		return nil
	case slices.Contains(mechs, "LOGIN"):
		for _, step := range []struct{ cmd, arg string }{{"AUTH LOGIN", ""}, {"", username}, {"", password}} {
			var rep reply
			var err error
			if step.cmd != "" {
				rep, err = c.cmd("%s", step.cmd)
			} else {
				rep, err = c.cmd("%s", b64([]byte(step.arg)))
			}
			if err != nil {
				return replyError("AUTH LOGIN", reply{}, err)
			}
			if rep.Code == 235 {
				return nil
			}
			if rep.Code != 334 {
				return replyError("AUTH LOGIN", rep, nil)
			}
		}
		return errors.New("AUTH LOGIN: the server asked for more than a user name and password")
	}
	return fmt.Errorf("AUTH: the server offers no mechanism we use (PLAIN, LOGIN): %q", c.ext["AUTH"])
}

// envelope is one SMTP transaction's envelope.
type envelope struct {
	From  string
	Rcpts []string
	Size  int
	UTF8  bool
	Body  []byte // CRLF line endings, not dot-stuffed
}

// transaction is what the server answered to one envelope.
type transaction struct {
	Rcpt []reply // per recipient, in order
	Data reply   // the reply after the final dot; zero when DATA was not reached
	// Spoke is false when the connection failed before the server
	// answered MAIL FROM: nothing happened, and a retry on another
	// connection cannot duplicate the message.
	Spoke bool
}

// send runs one mail transaction, pipelined when the server offers
// PIPELINING (RFC 2920 §3.1: MAIL, RCPT and DATA may be sent together).
func (c *smtpConn) send(e envelope) (transaction, error) {
	var tr transaction
	params := ""
	if c.has("SIZE") {
		params += " SIZE=" + strconv.Itoa(e.Size)
	}
	if c.has("8BITMIME") {
		params += " BODY=8BITMIME"
	}
	if e.UTF8 {
		if !c.has("SMTPUTF8") {
			return tr, &permanentError{reply{Code: 553, Enhanced: "5.6.7", Text: "the receiving server does not support SMTPUTF8 (RFC 6531)"}}
		}
		params += " SMTPUTF8"
	}
	pipelined := c.has("PIPELINING")
	c.deadline()
	fmt.Fprintf(c.w, "MAIL FROM:<%s>%s\r\n", e.From, params)
	if !pipelined {
		if err := c.w.Flush(); err != nil {
			return tr, err
		}
		rep, err := c.read()
		if err != nil {
			return tr, err
		}
		tr.Spoke = true
		if rep.Code/100 != 2 {
			return tr, &mailFromError{rep}
		}
	}
	for _, rcpt := range e.Rcpts {
		fmt.Fprintf(c.w, "RCPT TO:<%s>\r\n", rcpt)
		if !pipelined {
			rep, err := c.flushRead()
			if err != nil {
				return tr, err
			}
			tr.Rcpt = append(tr.Rcpt, rep)
		}
	}
	c.w.WriteString("DATA\r\n")
	if err := c.w.Flush(); err != nil {
		return tr, err
	}
	if pipelined {
		rep, err := c.read()
		if err != nil {
			return tr, err
		}
		tr.Spoke = true
		if rep.Code/100 != 2 {
			// The RCPT and DATA replies still come; read them so the
			// connection stays in step, then report MAIL's refusal.
			for range e.Rcpts {
				_, _ = c.read()
			}
			_, _ = c.read()
			return tr, &mailFromError{rep}
		}
		for range e.Rcpts {
			rep, err := c.read()
			if err != nil {
				return tr, err
			}
			tr.Rcpt = append(tr.Rcpt, rep)
		}
	}
	rep, err := c.read()
	if err != nil {
		return tr, err
	}
	accepted := 0
	for _, r := range tr.Rcpt {
		if r.Code/100 == 2 {
			accepted++
		}
	}
	if rep.Code != 354 {
		tr.Data = rep
		return tr, nil
	}
	if accepted == 0 {
		// The server took DATA with no recipient; end the empty message.
		c.w.WriteString(".\r\n")
		_, err := c.flushRead()
		tr.Data = reply{Code: 554, Text: "no recipient accepted"}
		return tr, err
	}
	c.deadline()
	if err := writeDotStuffed(c.w, e.Body); err != nil {
		return tr, err
	}
	if tr.Data, err = c.flushRead(); err != nil {
		return tr, err
	}
	c.sent++
	return tr, nil
}

func (c *smtpConn) flushRead() (reply, error) {
	if err := c.w.Flush(); err != nil {
		return reply{}, err
	}
	return c.read()
}

// reset ends a failed transaction so the connection can carry the next.
func (c *smtpConn) reset() error {
	rep, err := c.cmd("RSET")
	if err == nil && rep.Code != 250 {
		err = replyError("RSET", rep, nil)
	}
	return err
}

// close says QUIT (politely, briefly) and closes.
func (c *smtpConn) close() {
	_ = c.conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.w.WriteString("QUIT\r\n")
	if c.w.Flush() == nil {
		_, _ = c.read()
	}
	_ = c.conn.Close()
	if f := c.onClose; f != nil {
		c.onClose = nil
		f()
	}
}

// writeDotStuffed writes body for DATA (RFC 5321 §4.5.2: a line starting
// with "." gets another), then the terminating ".".
func writeDotStuffed(w io.Writer, body []byte) error {
	bw := w.(*bufio.Writer)
	atLineStart := true
	for len(body) > 0 {
		i := 0
		if atLineStart && body[0] == '.' {
			if err := bw.WriteByte('.'); err != nil {
				return err
			}
		}
		for i < len(body) && body[i] != '\n' {
			i++
		}
		if i < len(body) {
			i++ // include the LF
			atLineStart = true
		} else {
			atLineStart = false
		}
		if _, err := bw.Write(body[:i]); err != nil {
			return err
		}
		body = body[i:]
	}
	if !atLineStart {
		if _, err := bw.WriteString("\r\n"); err != nil {
			return err
		}
	}
	_, err := bw.WriteString(".\r\n")
	return err
}

// permanentError is a refusal that retrying cannot change.
type permanentError struct{ rep reply }

func (e *permanentError) Error() string { return e.rep.String() }

// mailFromError: the server refused MAIL FROM (every recipient shares the
// outcome).
type mailFromError struct{ rep reply }

func (e *mailFromError) Error() string { return "MAIL FROM refused: " + e.rep.String() }

func replyError(stage string, rep reply, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", stage, err)
	}
	return fmt.Errorf("%s: %s", stage, rep.String())
}

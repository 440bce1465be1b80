package smtptest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"time"
)

// Script says how a Scripted server answers. Each reply is a whole reply
// line ("451 4.3.0 try later"); an empty one is the well-behaved answer.
// The zero Script is a server that offers PIPELINING, SIZE and 8BITMIME,
// no STARTTLS, and accepts everything.
type Script struct {
	// Greeting replaces "220 scripted.test ESMTP". After a 421 greeting
	// the server hangs up; after another non-220 one it answers every
	// command but QUIT with 503 (RFC 5321 §3.1).
	Greeting string
	// Ehlo replaces the EHLO reply (and its extensions).
	Ehlo string
	// Helo replaces the HELO reply.
	Helo string
	// NoPipelining leaves PIPELINING (RFC 2920) out of the EHLO reply.
	NoPipelining bool
	// Cert, when set, makes the server offer STARTTLS (RFC 3207) with it.
	Cert *tls.Certificate
	// StartTLS replaces the "220" reply to STARTTLS.
	StartTLS string
	// HangUpAtHandshake: after its 220 to STARTTLS, the server closes the
	// connection instead of starting the TLS handshake.
	HangUpAtHandshake bool
	// Mail replaces the reply to MAIL FROM.
	Mail string
	// Rcpt, when set, gives the reply to RCPT TO for an address ("" is
	// the well-behaved answer).
	Rcpt func(addr string) string
	// Data replaces the "354" reply to DATA (which is "554 5.5.1 no valid
	// recipients" when no recipient was accepted, RFC 2920 §3.1).
	Data string
	// DropAfterDataBytes, when positive, makes the server hang up once it
	// has read that many bytes of message data, before the final dot.
	DropAfterDataBytes int
	// DropAfterDot: the server reads the whole message and hangs up
	// without a reply; it does not keep the message.
	DropAfterDot bool
	// KeepThenDrop: the server keeps the message and hangs up before its
	// 250 reaches the client (the case a client cannot tell from
	// DropAfterDot).
	KeepThenDrop bool
	// EndOfData replaces the "250" reply after the final dot; a refusal
	// means the message is not kept.
	EndOfData string
}

// Scripted is an SMTP server on loopback that answers from a Script and
// can misbehave at any stage: refuse, hang up mid-DATA, fail TLS. It
// speaks SMTP itself (not through go-smtp) so that it can break the
// protocol where a real server might. It keeps the messages it answered
// (or would have answered) 250 and logs every command it read.
type Scripted struct {
	Addr string

	mu       sync.Mutex
	script   Script
	kept     []Received
	log      []string
	unacked  int
	ln       net.Listener
	wg       sync.WaitGroup
	conns    map[net.Conn]struct{}
	shutdown bool
}

// StartScripted listens on a free loopback port and answers from script.
func StartScripted(script Script) (*Scripted, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Scripted{Addr: ln.Addr().String(), script: script, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Set replaces the script; the next command on every connection follows
// the new one.
func (s *Scripted) Set(script Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = script
}

// Messages returns the messages the server kept.
func (s *Scripted) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.kept...)
}

// Unacknowledged counts the messages read whole and never answered
// (DropAfterDot).
func (s *Scripted) Unacknowledged() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unacked
}

// Log returns what happened, in order: "connect", each command's verb
// ("EHLO", "MAIL", ...), "tls" after a handshake, "hangup" when the
// server dropped the connection on purpose.
func (s *Scripted) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Close stops listening and closes open connections.
func (s *Scripted) Close() {
	s.mu.Lock()
	s.shutdown = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *Scripted) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sc := &scriptedConn{srv: s, raw: c}
			sc.serve()
			_ = sc.conn.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Scripted) current() Script {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.script
}

func (s *Scripted) note(event string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, event)
}

// scriptedConn is one connection's state.
type scriptedConn struct {
	srv   *Scripted
	raw   net.Conn
	conn  net.Conn // raw, or TLS over it
	r     *bufio.Reader
	w     *bufio.Writer
	tls   bool
	inTx  bool
	from  string
	rcpts []string
}

func (c *scriptedConn) setConn(conn net.Conn) {
	c.conn = conn
	c.r = bufio.NewReader(conn)
	c.w = bufio.NewWriter(conn)
}

func (c *scriptedConn) reply(line string) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.w.WriteString(line + "\r\n")
	return c.w.Flush() == nil
}

func (c *scriptedConn) readLine() (string, bool) {
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", false
	}
	return strings.TrimRight(line, "\r\n"), true
}

func (c *scriptedConn) hangUp() { c.srv.note("hangup") }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func is2xx(line string) bool { return strings.HasPrefix(line, "2") }

func (c *scriptedConn) serve() {
	c.setConn(c.raw)
	c.srv.note("connect")
	greeting := or(c.srv.current().Greeting, "220 scripted.test ESMTP")
	if !c.reply(greeting) {
		return
	}
	if strings.HasPrefix(greeting, "421") {
		c.hangUp()
		return
	}
	for {
		line, ok := c.readLine()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		c.srv.note(verb)
		if verb == "QUIT" {
			c.reply("221 2.0.0 bye")
			return
		}
		if !strings.HasPrefix(greeting, "220") {
			c.reply("503 5.5.1 no service here")
			continue
		}
		if !c.command(verb, arg) {
			return
		}
	}
}

// command answers one command; false ends the connection.
func (c *scriptedConn) command(verb, arg string) bool {
	sc := c.srv.current()
	switch verb {
	case "EHLO":
		if sc.Ehlo != "" {
			return c.reply(sc.Ehlo)
		}
		ext := []string{"scripted.test", "SIZE 10485760", "8BITMIME", "ENHANCEDSTATUSCODES"}
		if !sc.NoPipelining {
			ext = append(ext, "PIPELINING")
		}
		if sc.Cert != nil && !c.tls {
			ext = append(ext, "STARTTLS")
		}
		for i, e := range ext {
			sep := "-"
			if i == len(ext)-1 {
				sep = " "
			}
			_, _ = c.w.WriteString("250" + sep + e + "\r\n")
		}
		return c.w.Flush() == nil
	case "HELO":
		return c.reply(or(sc.Helo, "250 scripted.test"))
	case "STARTTLS":
		return c.startTLS(sc)
	case "MAIL":
		rep := or(sc.Mail, "250 2.1.0 ok")
		if is2xx(rep) {
			c.inTx, c.from, c.rcpts = true, addrOf(arg), nil
		}
		return c.reply(rep)
	case "RCPT":
		if !c.inTx {
			return c.reply("503 5.5.1 MAIL first")
		}
		addr := addrOf(arg)
		rep := "250 2.1.5 ok"
		if sc.Rcpt != nil {
			rep = or(sc.Rcpt(addr), rep)
		}
		if is2xx(rep) {
			c.rcpts = append(c.rcpts, addr)
		}
		return c.reply(rep)
	case "DATA":
		return c.data(sc)
	case "RSET":
		c.inTx, c.from, c.rcpts = false, "", nil
		return c.reply("250 2.0.0 ok")
	case "NOOP":
		return c.reply("250 2.0.0 ok")
	}
	return c.reply("500 5.5.2 command not recognised")
}

func (c *scriptedConn) startTLS(sc Script) bool {
	if sc.Cert == nil || c.tls {
		return c.reply("502 5.5.1 STARTTLS not offered")
	}
	rep := or(sc.StartTLS, "220 2.0.0 ready to start TLS")
	if !c.reply(rep) {
		return false
	}
	if !strings.HasPrefix(rep, "220") {
		return true
	}
	if sc.HangUpAtHandshake {
		c.hangUp()
		return false
	}
	tc := tls.Server(c.raw, &tls.Config{Certificates: []tls.Certificate{*sc.Cert}, MinVersion: tls.VersionTLS12})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return false // the client refused the certificate, say
	}
	c.srv.note("tls")
	c.setConn(tc)
	// RFC 3207 §4.2: after the handshake the session starts over.
	c.tls, c.inTx, c.from, c.rcpts = true, false, "", nil
	return true
}

// data answers DATA, reads the message and answers its end, or hangs up
// where the script says.
func (c *scriptedConn) data(sc Script) bool {
	if !c.inTx {
		return c.reply("503 5.5.1 MAIL first")
	}
	rep := sc.Data
	if rep == "" {
		rep = "354 end with <CRLF>.<CRLF>"
		if len(c.rcpts) == 0 {
			rep = "554 5.5.1 no valid recipients"
		}
	}
	if !c.reply(rep) {
		return false
	}
	if !strings.HasPrefix(rep, "354") {
		return true
	}
	var body bytes.Buffer
	read := 0
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return false
		}
		read += len(line)
		if sc.DropAfterDataBytes > 0 && read >= sc.DropAfterDataBytes {
			c.hangUp()
			return false
		}
		if line == ".\r\n" {
			break
		}
		// RFC 5321 §4.5.2: remove the dot a client added.
		body.WriteString(strings.TrimPrefix(line, "."))
	}
	rcpts, from := c.rcpts, c.from
	c.inTx, c.from, c.rcpts = false, "", nil
	end := or(sc.EndOfData, "250 2.0.0 queued")
	switch {
	case len(rcpts) == 0:
		return c.reply("554 5.5.1 no valid recipients")
	case sc.DropAfterDot:
		c.srv.mu.Lock()
		c.srv.unacked++
		c.srv.mu.Unlock()
		c.hangUp()
		return false
	case !is2xx(end) && !sc.KeepThenDrop:
		return c.reply(end)
	}
	c.srv.mu.Lock()
	c.srv.kept = append(c.srv.kept, Received{From: from, Rcpts: rcpts, Data: body.Bytes(), TLS: c.tls, At: time.Now()})
	c.srv.mu.Unlock()
	if sc.KeepThenDrop {
		c.hangUp()
		return false
	}
	return c.reply(end)
}

// addrOf takes the address out of "FROM:<a@b> SIZE=10" or "TO:<a@b>".
func addrOf(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

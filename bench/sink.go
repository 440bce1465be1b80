package bench

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// SinkConfig shapes the receiving MTA the delivery figures deliver to.
type SinkConfig struct {
	// Domains is how many destination domains there are; each gets its
	// own listener (port) on 127.0.0.1, so every MTA under test sees one
	// next hop per domain, as with real MX hosts.
	Domains int
	// Delay is slept before each reply to MAIL, RCPT and DATA (a remote
	// MTA's latency).
	Delay time.Duration
	// TempFail and PermFail are the shares (0..1) of recipients refused
	// at RCPT with 451 4.3.0 on their first attempt (accepted on retry)
	// and with 550 5.1.1 on every attempt.
	TempFail, PermFail float64
	// Cert is offered with STARTTLS (RFC 3207).
	Cert tls.Certificate
}

// Sink is a loopback SMTP server that records, per message number, when it
// answered 250 (or refused), and keeps nothing else: a 100,000-message
// run holds no bodies in memory. Recipients are "p<seq>@d<k>.example"; the
// message number comes from the address, so the same sink serves every
// MTA under test. Other recipients (a bounce to the sender, say) are
// accepted and counted apart.
type Sink struct {
	cfg   SinkConfig
	ports []int
	srvs  []*smtp.Server

	mu        sync.Mutex
	delivered map[int]time.Time // seq -> the 250 after DATA
	attempts  map[int]int       // seq -> RCPT attempts seen
	tempSeen  map[int]bool      // seq refused 4xx at least once
	permSeen  map[int]bool      // seq refused 5xx
	first     map[int]time.Time // seq -> the answer to its first attempt (250, 4xx or 5xx)
	other     int               // messages to addresses outside the set
	plain     int               // messages received without TLS
	rsaSigned int               // messages with an rsa-sha256 DKIM signature
	edSigned  int               // messages with an ed25519-sha256 DKIM signature (RFC 8463)
}

// StartSink opens cfg.Domains listeners on free loopback ports.
func StartSink(cfg SinkConfig) (*Sink, error) {
	if cfg.Domains <= 0 {
		cfg.Domains = 1
	}
	k := &Sink{cfg: cfg}
	k.Reset()
	for range cfg.Domains {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			k.Close()
			return nil, fmt.Errorf("sink listener: %w", err)
		}
		srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{k: k, conn: c}, nil }))
		srv.Domain = "mx.bench.example"
		srv.ErrorLog = log.New(io.Discard, "", 0)
		srv.MaxRecipients = 1000
		srv.MaxMessageBytes = 10 << 20
		srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cfg.Cert}, MinVersion: tls.VersionTLS12}
		k.srvs = append(k.srvs, srv)
		k.ports = append(k.ports, ln.Addr().(*net.TCPAddr).Port)
		go func() { _ = srv.Serve(ln) }()
	}
	return k, nil
}

// Addr returns the listener of destination domain d ("127.0.0.1:port").
func (k *Sink) Addr(d int) string { return "127.0.0.1:" + strconv.Itoa(k.ports[d%len(k.ports)]) }

// Port returns the port of destination domain d's listener.
func (k *Sink) Port(d int) int { return k.ports[d%len(k.ports)] }

// Close stops every listener.
func (k *Sink) Close() {
	for _, s := range k.srvs {
		_ = s.Close()
	}
}

// Fate is what the sink does with a message number: "ok", "temp" (4xx
// once, then accepted) or "perm" (5xx always). It depends only on seq,
// so every MTA under test meets the same refusals.
func (k *Sink) Fate(seq int) string {
	u := float64(mix64(uint64(seq))>>11) / (1 << 53)
	switch {
	case u < k.cfg.PermFail:
		return "perm"
	case u < k.cfg.PermFail+k.cfg.TempFail:
		return "temp"
	}
	return "ok"
}

// mix64 is SplitMix64's finaliser: consecutive message numbers map to
// uniformly spread values (FNV of short decimal strings does not).
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// SinkState is a snapshot of what the sink saw for messages 0..n-1.
type SinkState struct {
	Delivered    int // answered 250 after DATA
	Refused      int // answered 5xx at RCPT (permanent)
	Deferred     int // answered 4xx at RCPT at least once
	FirstAttempt int // messages whose first attempt was answered (250, 4xx or 5xx)
	Other        int // messages to addresses outside the set
	Plain        int // messages received without TLS
	// RSASigned and EdSigned count messages carrying a DKIM signature
	// of each algorithm (RFC 6376 §3.3, RFC 8463).
	RSASigned, EdSigned int
	// LastFirst is the latest answer to a first attempt; LastDelivery the
	// latest 250.
	LastFirst, LastDelivery time.Time
}

// State counts what happened to messages 0..n-1.
func (k *Sink) State(n int) SinkState {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := SinkState{Other: k.other, Plain: k.plain, RSASigned: k.rsaSigned, EdSigned: k.edSigned}
	for seq, at := range k.delivered {
		if seq < n {
			st.Delivered++
			if at.After(st.LastDelivery) {
				st.LastDelivery = at
			}
		}
	}
	for seq, at := range k.first {
		if seq < n {
			st.FirstAttempt++
			if at.After(st.LastFirst) {
				st.LastFirst = at
			}
		}
	}
	for seq := range k.tempSeen {
		if seq < n {
			st.Deferred++
		}
	}
	for seq := range k.permSeen {
		if seq < n {
			st.Refused++
		}
	}
	return st
}

// DeliveredAt returns when message seq got its 250, if it did.
func (k *Sink) DeliveredAt(seq int) (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	at, ok := k.delivered[seq]
	return at, ok
}

// Reset forgets everything received (between measurements).
func (k *Sink) Reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.delivered, k.attempts, k.tempSeen, k.permSeen = map[int]time.Time{}, map[int]int{}, map[int]bool{}, map[int]bool{}
	k.first = map[int]time.Time{}
	k.other, k.plain, k.rsaSigned, k.edSigned = 0, 0, 0, 0
}

// seqOf parses "p<seq>@..." (the local part is case-sensitive, RFC 5321
// §2.4, but ours is always lower case).
func seqOf(rcpt string) (int, bool) {
	local, _, ok := strings.Cut(rcpt, "@")
	if !ok || !strings.HasPrefix(local, "p") {
		return 0, false
	}
	digits := local[1:]
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}

type sinkSession struct {
	k     *Sink
	conn  *smtp.Conn
	seqs  []int
	other int
}

func (x *sinkSession) Reset()        { x.seqs, x.other = nil, 0 }
func (x *sinkSession) Logout() error { return nil }

func (x *sinkSession) Mail(string, *smtp.MailOptions) error {
	time.Sleep(x.k.cfg.Delay)
	return nil
}

// Rcpt refuses by the message's fate: 451 4.3.0 is a transient failure
// (RFC 5321 §4.2.5, RFC 3463 §3.5), 550 5.1.1 "bad destination mailbox"
// a permanent one (RFC 3463 §3.2).
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	time.Sleep(x.k.cfg.Delay)
	seq, ok := seqOf(to)
	if !ok {
		x.other++
		return nil
	}
	k := x.k
	fate := k.Fate(seq)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.attempts[seq]++
	switch {
	case fate == "perm":
		k.permSeen[seq] = true
		k.firstAnswer(seq)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox (bench)"}
	case fate == "temp" && k.attempts[seq] == 1:
		k.tempSeen[seq] = true
		k.firstAnswer(seq)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later (bench)"}
	}
	x.seqs = append(x.seqs, seq)
	return nil
}

func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	head := b
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		head = b[:i]
	}
	rsa, ed := bytes.Contains(head, []byte("a=rsa-sha256")), bytes.Contains(head, []byte("a=ed25519-sha256"))
	time.Sleep(x.k.cfg.Delay)
	_, isTLS := x.conn.TLSConnectionState()
	now := time.Now()
	k := x.k
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, seq := range x.seqs {
		if _, dup := k.delivered[seq]; !dup {
			k.delivered[seq] = now
		}
		if _, seen := k.first[seq]; !seen {
			k.first[seq] = now
		}
	}
	k.other += x.other
	if rsa {
		k.rsaSigned++
	}
	if ed {
		k.edSigned++
	}
	if !isTLS {
		k.plain += len(x.seqs) + x.other
	}
	return nil
}

// firstAnswer notes the refusal of seq's first attempt; k.mu is held.
func (k *Sink) firstAnswer(seq int) {
	if _, seen := k.first[seq]; !seen {
		k.first[seq] = time.Now()
	}
}

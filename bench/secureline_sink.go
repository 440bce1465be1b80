package bench

import (
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

// lineSink is the receiving MTA of the SecureLine cost figures: one
// loopback listener offering STARTTLS (RFC 3207), reached for every
// destination domain through a route to a host name the harness DNS
// resolves. It checks every message against what its variant claims
// (checkShape) as it arrives, records when it answered 250, and keeps the
// raw text of the sampled messages only, for the decryption checks after
// the measured window. Recipients are "<label>-<seq>@d<k>.example".
type lineSink struct {
	srv  *smtp.Server
	port int

	mu    sync.Mutex
	slots map[string]*lineSlot // by variant label
	other int                  // messages to recipients of no expected variant
}

// lineSlot is what the sink knows of one variant.
type lineSlot struct {
	kind        lineKind
	at          []time.Time // seq -> the 250 after DATA (zero: not yet)
	got         int         // distinct messages received
	dup         int         // messages received again
	bad         int         // messages that failed checkShape or came without TLS
	firstBad    string      // why the first bad one failed
	sampleEvery int
	samples     map[int][]byte // seq -> raw message, for seq % sampleEvery == 0
	last        time.Time      // the latest first arrival
}

// lineProgress is a snapshot of one variant at the sink.
type lineProgress struct {
	Got, Dup, Bad int
	FirstBad      string
	Last          time.Time
}

func startLineSink(cert tls.Certificate) (*lineSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink listener: %w", err)
	}
	k := &lineSink{slots: map[string]*lineSlot{}, port: ln.Addr().(*net.TCPAddr).Port}
	k.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &lineSession{k: k, conn: c}, nil }))
	k.srv.Domain = lineSinkHost
	k.srv.ErrorLog = log.New(io.Discard, "", 0)
	k.srv.MaxRecipients = 100
	k.srv.MaxMessageBytes = 30 << 20
	k.srv.ReadTimeout, k.srv.WriteTimeout = time.Minute, time.Minute
	k.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	go func() { _ = k.srv.Serve(ln) }()
	return k, nil
}

func (k *lineSink) Close() { _ = k.srv.Close() }

// expect opens the slot of a variant before its messages are sent.
func (k *lineSink) expect(label string, kind lineKind, n, sampleEvery int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.slots[label] = &lineSlot{kind: kind, at: make([]time.Time, n), sampleEvery: max(sampleEvery, 1), samples: map[int][]byte{}}
}

func (k *lineSink) progress(label string) lineProgress {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.slots[label]
	if s == nil {
		return lineProgress{}
	}
	return lineProgress{Got: s.got, Dup: s.dup, Bad: s.bad, FirstBad: s.firstBad, Last: s.last}
}

// arrivals returns when each message of label got its 250 (zero: never).
func (k *lineSink) arrivals(label string) []time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]time.Time(nil), k.slots[label].at...)
}

// takeSamples hands over the sampled raw messages of label and forgets
// them.
func (k *lineSink) takeSamples(label string) map[int][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.slots[label]
	out := s.samples
	s.samples = map[int][]byte{}
	return out
}

// lineRcpt is recipient seq of a variant.
func lineRcpt(label string, seq, domains int) string {
	return label + "-" + strconv.Itoa(seq) + "@d" + strconv.Itoa(seq%domains) + ".example"
}

// parseLineRcpt is lineRcpt's inverse; the local part is compared as
// written (RFC 5321 §2.4: it is case-sensitive; ours is lower case).
func parseLineRcpt(rcpt string) (label string, seq int, ok bool) {
	local, _, found := strings.Cut(rcpt, "@")
	i := strings.LastIndexByte(local, '-')
	if !found || i <= 0 {
		return "", 0, false
	}
	digits := local[i+1:]
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" || len(digits) > 9 {
		return "", 0, false
	}
	seq, _ = strconv.Atoi(digits)
	return local[:i], seq, true
}

type lineSession struct {
	k     *lineSink
	conn  *smtp.Conn
	rcpts []string
}

func (x *lineSession) Reset()                               { x.rcpts = nil }
func (x *lineSession) Logout() error                        { return nil }
func (x *lineSession) Mail(string, *smtp.MailOptions) error { return nil }

func (x *lineSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.rcpts = append(x.rcpts, to)
	return nil
}

// Data checks the message for each recipient's variant and records it.
// A message that fails is still answered 250: the run fails on the
// count of bad messages, not on the server's retries.
func (x *lineSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := x.conn.TLSConnectionState()
	checks := map[lineKind]error{}
	for _, rcpt := range x.rcpts {
		if label, _, ok := parseLineRcpt(rcpt); ok {
			if kind, ok := x.k.kindOf(label); ok {
				if _, done := checks[kind]; !done {
					checks[kind] = checkShape(kind, raw)
				}
			}
		}
	}
	now := time.Now()
	x.k.mu.Lock()
	defer x.k.mu.Unlock()
	for _, rcpt := range x.rcpts {
		label, seq, ok := parseLineRcpt(rcpt)
		s := x.k.slots[label]
		if !ok || s == nil || seq >= len(s.at) {
			x.k.other++
			continue
		}
		if !s.at[seq].IsZero() {
			s.dup++
			continue
		}
		s.at[seq], s.last = now, now
		s.got++
		if err := checks[s.kind]; err != nil || !isTLS {
			if err == nil {
				err = fmt.Errorf("received without TLS")
			}
			if s.bad == 0 {
				s.firstBad = fmt.Sprintf("message %d: %v", seq, err)
			}
			s.bad++
		}
		if seq%s.sampleEvery == 0 {
			s.samples[seq] = raw
		}
	}
	return nil
}

func (k *lineSink) kindOf(label string) (lineKind, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.slots[label]
	if s == nil {
		return "", false
	}
	return s.kind, true
}

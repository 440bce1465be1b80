// Package dnstest is an authoritative DNS server on loopback for tests and
// benchmarks: it answers MX, A, AAAA and TXT queries from a table the
// caller fills and changes while it runs, and can be told to fail a name
// (SERVFAIL, or no answer at all) to test how lookups fail.
package dnstest

import (
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Server answers from its records; unknown names are NXDOMAIN.
type Server struct {
	// Addr is the UDP (and TCP) "127.0.0.1:port" to point resolvers at.
	Addr string

	mu      sync.RWMutex
	records map[string][]dns.RR // fqdn, lower case
	faults  map[string]int      // fqdn, lower case: the rcode to answer, or NoAnswer
	udp     *dns.Server
	tcp     *dns.Server
}

// Start listens on a free loopback port (UDP and TCP on the same port).
// The free UDP port may be taken for TCP by another process, so a few
// ports are tried before giving up.
func Start() (*Server, error) {
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		_ = pc.Close()
	}
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string][]dns.RR{}, faults: map[string]int{}}
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: ln, Handler: s}
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() {
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
}

// Add adds records in zone-file syntax ("example.org. 60 IN MX 10 mx.example.org.").
func (s *Server) Add(lines ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range lines {
		rr, err := dns.NewRR(line)
		if err != nil {
			return err
		}
		name := strings.ToLower(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
	return nil
}

// Remove drops every record of name.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, strings.ToLower(dns.Fqdn(name)))
}

// NoAnswer, given to Fail, leaves queries unanswered (a timeout).
const NoAnswer = -1

// Fail makes every query for name answer with rcode (dns.RcodeServerFailure,
// say) and no records, or go unanswered with NoAnswer; dns.RcodeSuccess
// ends the failure.
func (s *Server) Fail(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.ToLower(dns.Fqdn(name))
	if rcode == dns.RcodeSuccess {
		delete(s.faults, name)
		return
	}
	s.faults[name] = rcode
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		s.mu.RLock()
		rcode, failing := s.faults[strings.ToLower(q.Name)]
		if failing {
			s.mu.RUnlock()
			if rcode == NoAnswer {
				return
			}
			m.Rcode = rcode
			_ = w.WriteMsg(m)
			return
		}
		rrs, known := s.records[strings.ToLower(q.Name)]
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		s.mu.RUnlock()
		if !known {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

package delivery

import (
	"sync"
	"time"
)

// idleTimeout is how long an idle connection is kept for the next batch
// (RFC 5321 §4.5.3.2.7 gives servers 5 minutes; we stay well within).
const idleTimeout = 30 * time.Second

// connPool keeps idle connections per destination domain between
// batches, so a busy domain is not reconnected for every batch.
type connPool struct {
	mu   sync.Mutex
	idle map[string][]*smtpConn
}

func newConnPool() *connPool { return &connPool{idle: map[string][]*smtpConn{}} }

// get returns an idle connection to domain, closing stale ones.
func (p *connPool) get(domain string, now time.Time) *smtpConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for list := p.idle[domain]; len(list) > 0; list = p.idle[domain] {
		c := list[len(list)-1]
		p.idle[domain] = list[:len(list)-1]
		if now.Sub(c.lastUsed) < idleTimeout {
			return c
		}
		go c.close()
	}
	return nil
}

func (p *connPool) put(domain string, c *smtpConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle[domain] = append(p.idle[domain], c)
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for domain, list := range p.idle {
		for _, c := range list {
			c.close()
		}
		delete(p.idle, domain)
	}
}

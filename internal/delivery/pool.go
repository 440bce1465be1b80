package delivery

import (
	"context"
	"sync"
	"time"
)

// defaultIdleTimeout is how long an idle connection is kept for the next
// batch (RFC 5321 §4.5.3.2.7 gives servers 5 minutes; we stay well
// within).
const defaultIdleTimeout = 30 * time.Second

// connPool keeps idle connections per destination domain between
// batches, so a busy domain is not reconnected for every batch, and
// holds the node's connection limits: at most maxPerDomain open
// connections (idle or in use) per domain and maxTotal in all. Idle
// connections older than the idle timeout are closed by a janitor, and
// all of them at shutdown.
type connPool struct {
	maxTotal     int // 0: no cap
	maxPerDomain int
	idleTimeout  time.Duration
	gauge        func(open int) // reports the open connections

	mu      sync.Mutex
	idle    map[string][]*smtpConn
	open    map[string]int // per domain, idle and in use
	total   int
	changed chan struct{} // closed and replaced whenever a slot frees
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

func newConnPool(maxTotal, maxPerDomain int, idleTimeout time.Duration, gauge func(int)) *connPool {
	return &connPool{maxTotal: maxTotal, maxPerDomain: maxPerDomain, idleTimeout: idleTimeout, gauge: gauge,
		idle: map[string][]*smtpConn{}, open: map[string]int{}, changed: make(chan struct{})}
}

// startJanitor closes idle connections that passed the idle timeout,
// checking every half timeout, until closeAll.
func (p *connPool) startJanitor(now func() time.Time) {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		tick := time.NewTicker(p.idleTimeout / 2)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.reap(now())
			}
		}
	}()
}

// get returns an idle connection to domain, the most recently used
// first, closing stale ones; with verified, only one whose TLS was
// verified for the host name (the others stay idle).
func (p *connPool) get(domain string, now time.Time, verified bool) *smtpConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle[domain]) - 1; i >= 0; i-- {
		c := p.idle[domain][i]
		if now.Sub(c.lastUsed) >= p.idleTimeout {
			p.removeIdleLocked(domain, i)
			go c.close()
			continue
		}
		if verified && !c.verified {
			continue
		}
		p.removeIdleLocked(domain, i)
		return c
	}
	return nil
}

// put keeps c for the next batch (or closes it after shutdown).
func (p *connPool) put(domain string, c *smtpConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		go c.close()
		return
	}
	p.idle[domain] = append(p.idle[domain], c)
}

// acquire takes a connection slot for domain, waiting while the limits
// are reached. Idle connections give way: one to the same domain when
// the domain is at its limit, the longest idle one of any domain when
// the node is. The caller gives the slot back with free (or through the
// connection's onClose).
func (p *connPool) acquire(ctx context.Context, domain string) error {
	for {
		p.mu.Lock()
		domainFull := p.open[domain] >= p.maxPerDomain
		nodeFull := p.maxTotal > 0 && p.total >= p.maxTotal
		if !domainFull && !nodeFull {
			p.open[domain]++
			p.total++
			p.report()
			p.mu.Unlock()
			return nil
		}
		evicted := false
		if domainFull {
			evicted = p.evictLocked(domain)
		} else {
			evicted = p.evictLocked("")
		}
		ch := p.changed
		p.mu.Unlock()
		if evicted {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// free gives back a slot of domain.
func (p *connPool) free(domain string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.freeLocked(domain)
}

func (p *connPool) freeLocked(domain string) {
	if p.open[domain]--; p.open[domain] <= 0 {
		delete(p.open, domain)
	}
	p.total--
	p.report()
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *connPool) report() {
	if p.gauge != nil {
		p.gauge(p.total)
	}
}

// evictLocked closes the longest idle connection of domain ("" any
// domain), freeing its slot at once, and reports whether there was one.
func (p *connPool) evictLocked(domain string) bool {
	var victim *smtpConn
	victimDomain, victimIndex := "", -1
	for d, list := range p.idle {
		if domain != "" && d != domain {
			continue
		}
		for i, c := range list {
			if victim == nil || c.lastUsed.Before(victim.lastUsed) {
				victim, victimDomain, victimIndex = c, d, i
			}
		}
	}
	if victim == nil {
		return false
	}
	p.removeIdleLocked(victimDomain, victimIndex)
	p.closeIdleLocked(victimDomain, victim)
	return true
}

func (p *connPool) removeIdleLocked(domain string, i int) {
	list := p.idle[domain]
	list = append(list[:i:i], list[i+1:]...)
	if len(list) == 0 {
		delete(p.idle, domain)
	} else {
		p.idle[domain] = list
	}
}

// closeIdleLocked frees an idle connection's slot now and says QUIT in
// the background (an idle connection has no other user).
func (p *connPool) closeIdleLocked(domain string, c *smtpConn) {
	if c.onClose != nil {
		c.onClose = nil
		p.freeLocked(domain)
	}
	go c.close()
}

// reap closes idle connections unused for the idle timeout.
func (p *connPool) reap(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for domain, list := range p.idle {
		for i := len(list) - 1; i >= 0; i-- {
			if c := list[i]; now.Sub(c.lastUsed) >= p.idleTimeout {
				p.removeIdleLocked(domain, i)
				p.closeIdleLocked(domain, c)
				list = p.idle[domain]
			}
		}
	}
}

// idleCount returns how many connections are idle (for tests).
func (p *connPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, list := range p.idle {
		n += len(list)
	}
	return n
}

// closeAll stops the janitor and closes every idle connection;
// connections released afterwards are closed too.
func (p *connPool) closeAll() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var conns []*smtpConn
	for domain, list := range p.idle {
		for _, c := range list {
			if c.onClose != nil {
				c.onClose = nil
				p.freeLocked(domain)
			}
			conns = append(conns, c)
		}
		delete(p.idle, domain)
	}
	p.mu.Unlock()
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(c.close) // QUIT to each, in parallel, before returning
	}
	wg.Wait()
}

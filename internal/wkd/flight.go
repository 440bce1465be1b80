package wkd

import (
	"context"
	"sync"
)

// flight lets concurrent lookups of one key on this node share one fetch
// (other nodes share the stored result instead).
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done    chan struct{}
	res     entry
	waiters int // callers sharing this one (under flight.mu)
}

// do runs fn once for key among callers that overlap, and gives each the
// result; shared reports whether this caller waited for another's fn. A
// waiter whose ctx ends stops waiting (with ctx's error) and the fetch
// goes on for the others.
func (f *flight) do(ctx context.Context, key string, fn func() entry) (res entry, shared bool, err error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		c.waiters++
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.res, true, nil
		case <-ctx.Done():
			return entry{}, true, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	if f.calls == nil {
		f.calls = map[string]*call{}
	}
	f.calls[key] = c
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.res = fn()
	return c.res, false, nil
}

// waiting returns how many callers wait for key's fetch.
func (f *flight) waiting(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c.waiters
	}
	return 0
}

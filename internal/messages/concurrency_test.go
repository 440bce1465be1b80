package messages_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// Concurrent batches naming the same destination domains in opposite
// orders each start those domains' (unique) delivery jobs; inserted in one
// fixed order they queue behind each other instead of deadlocking.
func TestConcurrentBatchesOverTheSameDomainsAllCommit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
		domains := make([]string, 30)
		for i := range domains {
			domains[i] = fmt.Sprintf("d%02d.example", i)
		}
		batch := func(reverse bool) []messages.Request {
			reqs := make([]messages.Request, len(domains))
			for i := range domains {
				d := domains[i]
				if reverse {
					d = domains[len(domains)-1-i]
				}
				reqs[i] = messages.Request{From: "reminders@clinic.example", To: []string{"pat@" + d}, Subject: "Reminder", Text: "See you."}
			}
			return reqs
		}
		const senders = 8
		var wg sync.WaitGroup
		errs := make(chan error, senders)
		for i := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					res, err := w.msgs.SendBatch(context.Background(), w.a, batch(i%2 == 1))
					if err != nil {
						errs <- err
						return
					}
					for _, r := range res {
						if r.Err != nil {
							errs <- r.Err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("batch: %v", err)
		}
		var n int
		if err := s.Reader().QueryRow(context.Background(), "SELECT COUNT(*) FROM message_recipients WHERE account_id = $1",
			w.a.Principal.AccountID).Scan(&n); err != nil || n != senders*3*len(domains) {
			t.Errorf("recipients stored: %d (%v), want %d", n, err, senders*3*len(domains))
		}
	})
}

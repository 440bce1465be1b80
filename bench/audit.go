package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
)

func benchEvent(i int) audit.Event {
	return audit.Event{
		AccountID: "bench-account", ActorKind: "client", ActorID: "spc_bench", Action: "message.sent",
		Target: fmt.Sprintf("message/%d", i), Outcome: audit.OutcomeSuccess, SourceIP: "127.0.0.1",
		RequestID: "bench", Details: map[string]string{"channel": "api"},
	}
}

// AuditAppend measures audit events appended per second, batch events
// per transaction (1 = one transaction per event, as a request that
// audits one action).
func AuditAppend(ctx context.Context, s *store.Store, n, batch int, progress Progress) (Result, error) {
	log := audit.New(s, audit.Options{})
	batch = max(batch, 1)
	name := fmt.Sprintf("audit.append.batch%d", batch)
	start := time.Now()
	if err := appendEvents(ctx, log, n, batch, name, progress); err != nil {
		return Result{}, err
	}
	return Result{Name: name, Dialect: string(s.Dialect()), Ops: n, Elapsed: time.Since(start)}, nil
}

func appendEvents(ctx context.Context, log *audit.Log, n, batch int, name string, progress Progress) error {
	events := make([]audit.Event, 0, batch)
	for done := 0; done < n; {
		events = events[:0]
		for i := 0; i < batch && done+i < n; i++ {
			events = append(events, benchEvent(done+i))
		}
		if _, err := log.AppendBatch(ctx, events); err != nil {
			return fmt.Errorf("append: %w", err)
		}
		done += len(events)
		if progress != nil {
			progress(name, done, n)
		}
	}
	return nil
}

// AuditVerify seeds n events in batches of 5,000 and measures how long
// Verify takes to walk the chain (events verified per second).
func AuditVerify(ctx context.Context, s *store.Store, n int, progress Progress) (Result, error) {
	log := audit.New(s, audit.Options{})
	if err := appendEvents(ctx, log, n, 5000, "audit.verify.seed", progress); err != nil {
		return Result{}, err
	}
	start := time.Now()
	r, err := log.Verify(ctx, "bench-account", func(done int64) {
		if progress != nil {
			progress("audit.verify", int(done), n)
		}
	})
	if err != nil {
		return Result{}, err
	}
	if !r.OK() || r.Events != int64(n) {
		return Result{}, fmt.Errorf("verify: %s", r)
	}
	return Result{Name: "audit.verify", Dialect: string(s.Dialect()), Ops: n, Elapsed: time.Since(start)}, nil
}

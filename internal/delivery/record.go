package delivery

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
)

// Recipient states delivery sets.
const (
	stateDelivered = messages.StateDelivered
	stateDeferred  = messages.StateDeferred
	stateBounced   = messages.StateBounced
	stateFailed    = messages.StateFailed
)

// recorder commits outcomes as they come, grouping whatever arrived while
// the previous commit ran into the next (a group commit): few
// transactions under load, and little accepted-but-unrecorded mail should
// the node die (each such message would be sent again). Its channel is
// unbuffered on purpose: a worker waits for the recorder before it sends
// the next message, so delivery never runs ahead of what is recorded by
// more than one message per connection.
type recorder struct {
	e    *Engine
	ctx  context.Context
	in   chan []outcome
	done chan error
}

// maxGroup bounds the outcomes of one commit.
const maxGroup = 500

func (e *Engine) newRecorder(ctx context.Context) *recorder {
	r := &recorder{e: e, ctx: ctx, in: make(chan []outcome), done: make(chan error, 1)}
	go r.loop()
	return r
}

func (r *recorder) add(out []outcome) { r.in <- out }

// close waits for everything added to be committed and returns the first
// error.
func (r *recorder) close() error {
	close(r.in)
	return <-r.done
}

func (r *recorder) loop() {
	var firstErr error
	for first := range r.in {
		pending := first
	gather:
		for len(pending) < maxGroup {
			select {
			case more, ok := <-r.in:
				if !ok {
					break gather
				}
				pending = append(pending, more...)
			default:
				break gather
			}
		}
		if err := r.e.record(r.ctx, pending); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	r.done <- firstErr
}

// record stores a batch's outcomes in one transaction (a group commit):
// states, evidence, events, and suppressions for hard bounces. A deferral
// past the recipient's lifetime becomes a bounce. Rows whose lease this
// node no longer holds are left alone.
func (e *Engine) record(ctx context.Context, outcomes []outcome) error {
	now := e.opts.Now()
	var states []string
	err := e.db.InTx(ctx, func(tx store.Tx) error {
		states = states[:0]
		for _, o := range outcomes {
			state, err := e.recordTx(ctx, tx, o, now)
			if err != nil {
				return err
			}
			states = append(states, state)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, state := range states {
		e.count(outcomes[i], state)
	}
	return nil
}

// recordTx stores one outcome in tx and returns the state recorded, ""
// when this node no longer holds the recipient's lease.
func (e *Engine) recordTx(ctx context.Context, tx store.Tx, o outcome, now time.Time) (string, error) {
	state, next := o.state, now
	reason := o.reason
	if state == stateDeferred {
		next = now.Add(backoff(o.c.Attempts))
		if !next.Before(o.c.ExpiresAt) {
			state = stateBounced
			reason = "gave up after the delivery lifetime; last error: " + describe(o)
		}
	}
	var delivered any
	if state == stateDelivered {
		delivered = store.Micros(now)
	}
	version, cipher := tlsNames(o.tls)
	smtpReply := o.reply.String()
	if o.reply.Code == 0 {
		smtpReply = reason
	}
	n, err := tx.Exec(ctx, `UPDATE message_recipients SET state = $1, attempts = attempts + 1, next_attempt_at = $2, lease_until = 0,
		lease_owner = '', updated_at = $3, remote_host = $4, tls_version = $5, tls_cipher = $6, smtp_code = $7, smtp_reply = $8,
		delivered_at = $9 WHERE message_id = $10 AND rcpt_index = $11 AND lease_owner = $12`,
		state, store.Micros(next), store.Micros(now), o.host, version, cipher, o.reply.Code, sanitizeReply(smtpReply), delivered,
		o.c.MessageID, o.c.Index, o.c.Owner)
	if err != nil {
		return "", fmt.Errorf("record outcome: %w", err)
	}
	if n == 0 {
		return "", nil // the lease ran out and another node took over
	}
	details := map[string]string{"smtp_code": strconv.Itoa(o.reply.Code), "remote_host": o.host, "tls_version": version}
	if reason != "" {
		details["reason"] = sanitizeReply(reason)
	}
	b, _ := json.Marshal(details)
	if _, err := tx.Exec(ctx, `INSERT INTO message_events (id, account_id, message_id, rcpt_index, type, time, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, store.NewID(), o.c.AccountID, o.c.MessageID, o.c.Index, state, store.Micros(now), string(b)); err != nil {
		return "", fmt.Errorf("record event: %w", err)
	}
	if state == stateBounced && o.hard {
		if err := messages.Suppress(ctx, tx, o.c.AccountID, o.c.Address, messages.ReasonHardBounce, now); err != nil {
			return "", err
		}
	}
	return state, nil
}

// count updates the metrics for a recorded outcome.
func (e *Engine) count(o outcome, state string) {
	if state == "" {
		return
	}
	e.metrics.outcomes.WithLabelValues(state).Inc()
	if state == stateDelivered {
		via := o.via
		if via == "" {
			via = o.c.Method
		}
		if via == "" {
			via = "none"
		}
		e.metrics.secureDeliveries.WithLabelValues(via).Inc()
	}
}

func describe(o outcome) string {
	if o.reply.Code != 0 {
		return o.reply.String()
	}
	return o.reason
}

func tlsNames(st *tls.ConnectionState) (string, string) {
	if st == nil {
		return "", ""
	}
	return tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)
}

package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/internal/store"
)

// verifyChunk is how many events Verify reads per query: large enough to
// amortise round trips, small enough to keep memory flat on long chains.
const verifyChunk = 5000

// Report is the result of verifying one account's chain.
type Report struct {
	AccountID string
	// Events is how many events were checked.
	Events int64
	// Broken is empty when the chain is intact; otherwise it says what is
	// wrong at BrokenSeq (and BrokenID when the event exists).
	Broken    string
	BrokenSeq int64
	BrokenID  string
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return r.Broken == "" }

// String is one human line for the CLI.
func (r Report) String() string {
	name := r.AccountID
	if name == "" {
		name = "(platform)"
	}
	if r.OK() {
		return fmt.Sprintf("account %s: OK, %d events", name, r.Events)
	}
	return fmt.Sprintf("account %s: BROKEN at seq %d (event %s): %s", name, r.BrokenSeq, r.BrokenID, r.Broken)
}

// Verify walks the account's chain in seq order, recomputing every hash
// and checking each link, that seqs have no gaps, and that the head row
// matches the last event (which detects a truncated tail). It streams in
// chunks; progress, when set, receives the running count.
func (l *Log) Verify(ctx context.Context, accountID string, progress func(done int64)) (Report, error) {
	r := Report{AccountID: accountID}
	prevHash, lastSeq := genesisHash, int64(0)
	for {
		events, err := l.query(ctx, selectEvents+" WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
			accountID, lastSeq, verifyChunk)
		if err != nil {
			return r, err
		}
		for _, e := range events {
			switch {
			case e.Seq != lastSeq+1:
				return r.broken(lastSeq+1, "", fmt.Sprintf("gap: event seq %d missing (next present is %d)", lastSeq+1, e.Seq)), nil
			case e.PrevHash != prevHash:
				return r.broken(e.Seq, e.ID, "broken link: prev_hash does not match the previous event's hash"), nil
			case Hash(e) != e.Hash:
				return r.broken(e.Seq, e.ID, "hash mismatch: the event's content was changed after it was written"), nil
			}
			prevHash, lastSeq = e.Hash, e.Seq
			r.Events++
		}
		if progress != nil {
			progress(r.Events)
		}
		if len(events) < verifyChunk {
			break
		}
	}
	return l.checkHead(ctx, r, lastSeq, prevHash)
}

func (l *Log) checkHead(ctx context.Context, r Report, lastSeq int64, lastHash string) (Report, error) {
	var seq int64
	var hash string
	err := l.db.Reader().QueryRow(ctx, "SELECT seq, hash FROM audit_heads WHERE account_id = $1", r.AccountID).Scan(&seq, &hash)
	if errors.Is(err, store.ErrNotFound) {
		if lastSeq == 0 {
			return r, nil
		}
		return r.broken(lastSeq, "", "head missing: the chain's head record was deleted"), nil
	}
	if err != nil {
		return r, fmt.Errorf("read audit head: %w", err)
	}
	if seq != lastSeq || hash != lastHash {
		return r.broken(lastSeq+1, "", fmt.Sprintf("truncated: head says %d events, chain has %d", seq, lastSeq)), nil
	}
	return r, nil
}

func (r Report) broken(seq int64, id, what string) Report {
	r.Broken, r.BrokenSeq, r.BrokenID = what, seq, id
	return r
}

// Accounts lists every account id that has a chain ("" is the platform).
func (l *Log) Accounts(ctx context.Context) ([]string, error) {
	rows, err := l.db.Reader().Query(ctx, `SELECT account_id FROM audit_heads
		UNION SELECT DISTINCT account_id FROM audit_events ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list audit chains: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// VerifyAll verifies every chain; progress receives the running total.
func (l *Log) VerifyAll(ctx context.Context, progress func(done int64)) ([]Report, error) {
	ids, err := l.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var total int64
	out := make([]Report, 0, len(ids))
	for _, id := range ids {
		r, err := l.Verify(ctx, id, func(done int64) {
			if progress != nil {
				progress(total + done)
			}
		})
		if err != nil {
			return out, err
		}
		total += r.Events
		out = append(out, r)
	}
	return out, nil
}

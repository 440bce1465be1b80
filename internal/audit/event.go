// Package audit owns the append-only, hash-chained audit log: every
// security-relevant action is an Event, each event carries the SHA-256 of
// the previous event of its account, and Verify walks a chain to prove it
// untampered. It does not decide what is security-relevant; callers do.
package audit

import "time"

// Outcome of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Event is one audit record. Details must never hold PHI, passwords,
// tokens or message bodies.
type Event struct {
	ID        string            `json:"id"`
	AccountID string            `json:"account_id"`
	Seq       int64             `json:"seq"`
	Time      time.Time         `json:"time"`
	ActorKind string            `json:"actor_kind"`
	ActorID   string            `json:"actor_id"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Outcome   string            `json:"outcome"`
	SourceIP  string            `json:"source_ip"`
	RequestID string            `json:"request_id"`
	Details   map[string]string `json:"details"`
	PrevHash  string            `json:"prev_hash"` // hex SHA-256
	Hash      string            `json:"hash"`      // hex SHA-256
}

// Query filters List. Zero values mean "no filter"; Limit 0 means the
// default page size.
type Query struct {
	Since   time.Time
	Until   time.Time
	Action  string
	ActorID string
	Cursor  string
	Limit   int
}

// Page is one page of events, oldest first, and the cursor of the next
// page ("" when this is the last).
type Page struct {
	Events     []Event
	NextCursor string
}

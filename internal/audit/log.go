package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

// ErrInvalid: an event failed validation; nothing was written.
var ErrInvalid = errors.New("audit: invalid event")

// genesisHash is the prev_hash of the first event of every chain.
var genesisHash = strings.Repeat("0", 64)

var actionPattern = regexp.MustCompile(`^[a-z0-9_.:-]{1,64}$`)

// Limits on free-form fields: an audit event is a short record, and a
// bounded one cannot smuggle a message body.
const (
	maxFieldLen  = 256
	maxDetails   = 32
	maxDetailKey = 64
	maxDetailVal = 512
)

// Options tunes a Log. The zero value uses the wall clock.
type Options struct {
	// Now returns the current time; tests inject a fixed clock.
	Now func() time.Time
}

// Log appends, lists and verifies audit events.
type Log struct {
	db  *store.Store
	now func() time.Time
}

// New returns a Log over db.
func New(db *store.Store, opts Options) *Log {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{db: db, now: opts.Now}
}

// Append appends e in its own transaction and returns it as stored.
func (l *Log) Append(ctx context.Context, e Event) (Event, error) {
	var out Event
	err := l.db.InTx(ctx, func(tx store.Tx) error {
		var err error
		out, err = l.AppendTx(ctx, tx, e)
		return err
	})
	return out, err
}

// AppendBatch appends events in one transaction, in order; they may
// belong to different accounts. Each account's head is locked once (in
// account order, so concurrent batches cannot deadlock) and rows are
// written with multi-row inserts, which makes a batch far cheaper than as
// many Appends.
func (l *Log) AppendBatch(ctx context.Context, events []Event) ([]Event, error) {
	for _, e := range events {
		if err := validate(e); err != nil {
			return nil, err
		}
	}
	var out []Event
	err := l.db.InTx(ctx, func(tx store.Tx) error {
		heads, err := lockHeads(ctx, tx, events)
		if err != nil {
			return err
		}
		out = make([]Event, len(events))
		for i, e := range events {
			h := heads[e.AccountID]
			out[i] = l.seal(e, h.seq, h.hash)
			heads[e.AccountID] = head{out[i].Seq, out[i].Hash}
		}
		for start := 0; start < len(out); start += insertChunk {
			if err := insertEvents(ctx, tx, out[start:min(start+insertChunk, len(out))]); err != nil {
				return err
			}
		}
		for acct, h := range heads {
			if _, err := tx.Exec(ctx, "UPDATE audit_heads SET seq = $1, hash = $2 WHERE account_id = $3", h.seq, h.hash, acct); err != nil {
				return fmt.Errorf("advance audit head: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// insertChunk rows per INSERT: 14 parameters a row stays well under
// SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const insertChunk = 500

type head struct {
	seq  int64
	hash string
}

func lockHeads(ctx context.Context, tx store.Tx, events []Event) (map[string]head, error) {
	heads := map[string]head{}
	for _, e := range events {
		heads[e.AccountID] = head{}
	}
	accounts := make([]string, 0, len(heads))
	for a := range heads {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	for _, a := range accounts {
		seq, hash, err := lockHead(ctx, tx, a)
		if err != nil {
			return nil, err
		}
		heads[a] = head{seq, hash}
	}
	return heads, nil
}

// seal fills in what Append assigns: id, seq, time and the chain hashes.
func (l *Log) seal(e Event, prevSeq int64, prevHash string) Event {
	e.ID = store.NewID()
	e.Seq = prevSeq + 1
	e.Time = l.now().UTC().Truncate(time.Microsecond)
	e.PrevHash = prevHash
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.Hash = Hash(e)
	return e
}

func insertEvents(ctx context.Context, tx store.Tx, events []Event) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO audit_events (account_id, seq, id, time, actor_kind, actor_id, action, target,
		outcome, source_ip, request_id, details, prev_hash, hash) VALUES `)
	args := make([]any, 0, len(events)*14)
	for i, e := range events {
		details, err := canonicalDetails(e.Details)
		if err != nil {
			return err
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range 14 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", len(args)+j+1)
		}
		b.WriteByte(')')
		args = append(args, e.AccountID, e.Seq, e.ID, store.Micros(e.Time), e.ActorKind, e.ActorID, e.Action, e.Target,
			e.Outcome, e.SourceIP, e.RequestID, details, e.PrevHash, e.Hash)
	}
	if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("append audit events: %w", err)
	}
	return nil
}

// AppendTx appends e inside the caller's transaction, so the event commits
// or rolls back with the action it records. It assigns id, seq, time,
// prev_hash and hash. Appends to one account are serialised on the
// account's audit_heads row (SQLite transactions already hold the single
// write lock).
func (l *Log) AppendTx(ctx context.Context, tx store.Tx, e Event) (Event, error) {
	if err := validate(e); err != nil {
		return Event{}, err
	}
	seq, prev, err := lockHead(ctx, tx, e.AccountID)
	if err != nil {
		return Event{}, err
	}
	e = l.seal(e, seq, prev)
	if err := insertEvents(ctx, tx, []Event{e}); err != nil {
		return Event{}, err
	}
	if _, err := tx.Exec(ctx, "UPDATE audit_heads SET seq = $1, hash = $2 WHERE account_id = $3", e.Seq, e.Hash, e.AccountID); err != nil {
		return Event{}, fmt.Errorf("advance audit head: %w", err)
	}
	return e, nil
}

// lockHead returns the account's current head (0 and the genesis hash for
// a new chain), holding its row lock until the transaction ends.
func lockHead(ctx context.Context, tx store.Tx, accountID string) (int64, string, error) {
	if _, err := tx.Exec(ctx, "INSERT INTO audit_heads (account_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (account_id) DO NOTHING",
		accountID, genesisHash); err != nil {
		return 0, "", fmt.Errorf("create audit head: %w", err)
	}
	q := "SELECT seq, hash FROM audit_heads WHERE account_id = $1"
	if tx.Dialect() == store.Postgres {
		q += " FOR UPDATE"
	}
	var seq int64
	var hash string
	if err := tx.QueryRow(ctx, q, accountID).Scan(&seq, &hash); err != nil {
		return 0, "", fmt.Errorf("lock audit head: %w", err)
	}
	return seq, hash, nil
}

func validate(e Event) error {
	switch {
	case !actionPattern.MatchString(e.Action):
		return fmt.Errorf("%w: action must match %s", ErrInvalid, actionPattern)
	case e.ActorKind == "":
		return fmt.Errorf("%w: actor_kind is required", ErrInvalid)
	case len(e.Details) > maxDetails:
		return fmt.Errorf("%w: at most %d details", ErrInvalid, maxDetails)
	}
	for name, v := range map[string]string{"account_id": e.AccountID, "actor_kind": e.ActorKind, "actor_id": e.ActorID,
		"target": e.Target, "outcome": e.Outcome, "source_ip": e.SourceIP, "request_id": e.RequestID} {
		if len(v) > maxFieldLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, name, maxFieldLen)
		}
	}
	for k, v := range e.Details {
		if k == "" || len(k) > maxDetailKey || len(v) > maxDetailVal {
			return fmt.Errorf("%w: detail keys must be 1..%d bytes and values at most %d", ErrInvalid, maxDetailKey, maxDetailVal)
		}
	}
	return nil
}

// Hash returns the hex SHA-256 of e's canonical encoding: every field
// except Hash itself, each written as a 4-byte big-endian length followed
// by its bytes, in this order: "sealpost-audit-v1", account_id, seq
// (decimal), id, time (microseconds since the Unix epoch, decimal),
// actor_kind, actor_id, action, target, outcome, source_ip, request_id,
// the number of details, then each detail key and value sorted by key,
// and finally prev_hash. Length prefixes make the encoding unambiguous:
// no two different events encode to the same bytes.
func Hash(e Event) string {
	h := sha256.New()
	field := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("sealpost-audit-v1")
	field(e.AccountID)
	field(fmt.Sprint(e.Seq))
	field(e.ID)
	field(fmt.Sprint(store.Micros(e.Time)))
	field(e.ActorKind)
	field(e.ActorID)
	field(e.Action)
	field(e.Target)
	field(e.Outcome)
	field(e.SourceIP)
	field(e.RequestID)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	field(fmt.Sprint(len(keys)))
	for _, k := range keys {
		field(k)
		field(e.Details[k])
	}
	field(e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

func canonicalDetails(d map[string]string) (string, error) {
	b, err := json.Marshal(d) // encoding/json sorts map keys
	if err != nil {
		return "", fmt.Errorf("encode audit details: %w", err)
	}
	return string(b), nil
}

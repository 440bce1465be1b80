package store

import (
	"time"

	"github.com/google/uuid"
)

// Micros converts t to the stored form of times: microseconds since the
// Unix epoch, UTC. The zero time stores as 0.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromMicros converts a stored time back; 0 gives the zero time.
func FromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// NewID returns a new time-ordered row id (UUIDv7, RFC 9562 §5.7), so ids
// sort roughly by creation and index inserts stay local.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

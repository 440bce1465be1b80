package messages

import "time"

// ReplaceDateForTest exposes replaceDate: the message unchanged when it
// has no Date field.
func ReplaceDateForTest(raw []byte, at time.Time) []byte {
	if out, ok := replaceDate(raw, at); ok {
		return out
	}
	return raw
}

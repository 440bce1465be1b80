package store

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// EncodeCursor is the opaque keyset cursor of list pages sorted by
// creation time and id (newest or oldest first): the last row's sort key.
// Clients pass it back unchanged; its form is not part of the API.
func EncodeCursor(created time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(Micros(created), 10) + "/" + id))
}

// DecodeCursor reads an EncodeCursor value back as the stored creation
// time (microseconds) and id; ok is false for anything else.
func DecodeCursor(c string) (created int64, id string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", false
	}
	ts, id, found := strings.Cut(string(b), "/")
	n, err := strconv.ParseInt(ts, 10, 64)
	if !found || err != nil || n < 0 || id == "" {
		return 0, "", false
	}
	return n, id, true
}

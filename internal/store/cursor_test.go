package store_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

func TestCursorRoundTripsAndRefusesAnythingElse(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 30, 0, 123456000, time.UTC)
	created, id, ok := store.DecodeCursor(store.EncodeCursor(at, "msg_01/x"))
	if !ok || created != store.Micros(at) || id != "msg_01/x" {
		t.Fatalf("round trip: %d %q %v", created, id, ok)
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, c := range map[string]string{
		"empty":           "",
		"not base64":      "***",
		"no separator":    b64("12345"),
		"no id":           b64("12345/"),
		"not a number":    b64("abc/msg"),
		"a negative time": b64("-5/msg"),
		"padded base64":   base64.URLEncoding.EncodeToString([]byte("1/ab")),
	} {
		if _, _, ok := store.DecodeCursor(c); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

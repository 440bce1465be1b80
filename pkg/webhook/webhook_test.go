package webhook_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/pkg/webhook"
)

const secret = "whsec_test-secret"

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"e1","type":"delivered"}`)
	good := webhook.Sign(body, now, secret)
	rotated := webhook.Sign(body, now, "whsec_new", secret)
	cases := []struct {
		name   string
		body   []byte
		header string
		now    time.Time
		want   error
	}{
		{"a fresh signature verifies", body, good, now, nil},
		{"either secret of a rotation verifies", body, rotated, now, nil},
		{"a signature within the tolerance verifies", body, good, now.Add(4 * time.Minute), nil},
		{"a changed body is refused", []byte(`{"id":"e1","type":"bounced"}`), good, now, webhook.ErrMismatch},
		{"another secret is refused", body, webhook.Sign(body, now, "whsec_other"), now, webhook.ErrMismatch},
		{"an old timestamp is refused", body, good, now.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"a future timestamp is refused", body, good, now.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"a replayed signature under a new timestamp is refused", body,
			strings.Replace(good, fmt.Sprint(now.Unix()), fmt.Sprint(now.Unix()+1), 1), now, webhook.ErrMismatch},
		{"an empty header is refused", body, "", now, webhook.ErrMalformedHeader},
		{"a header without v1 is refused", body, "t=1800000000", now, webhook.ErrMalformedHeader},
		{"a header without t is refused", body, "v1=" + strings.Repeat("0", 64), now, webhook.ErrMalformedHeader},
		{"two timestamps are refused", body, "t=1,t=2,v1=" + strings.Repeat("0", 64), now, webhook.ErrMalformedHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.VerifyAt(tc.body, tc.header, secret, 0, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("t=1800000000,v1=" + strings.Repeat("ab", 32))
	f.Add("t=1,v1=x,v0=y,v1=" + strings.Repeat("0", 64))
	f.Add(",,=,t=")
	f.Fuzz(func(t *testing.T, header string) {
		p, err := webhook.Parse(header)
		if err == nil && (p.Timestamp <= 0 || len(p.Signatures) == 0) {
			t.Fatalf("accepted %q as %+v", header, p)
		}
		_ = webhook.VerifyAt([]byte("{}"), header, secret, 0, time.Unix(p.Timestamp, 0))
	})
}

// A receiver verifies the raw body before it parses it, and answers 2xx
// only once the event is stored, deduplicating on the event id.
func Example() {
	seen := map[string]bool{}
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), secret, webhook.DefaultTolerance); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(webhook.EventIDHeader)
		if !seen[id] {
			seen[id] = true
			fmt.Println("stored event", id)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	// What Sealpost sends (twice, as a retry would).
	body := []byte(`{"id":"0190a1b2-0000-7000-8000-000000000001","type":"delivered"}`)
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(body)))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, time.Now(), secret))
		req.Header.Set(webhook.EventIDHeader, "0190a1b2-0000-7000-8000-000000000001")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// stored event 0190a1b2-0000-7000-8000-000000000001
	// 204
	// 204
}

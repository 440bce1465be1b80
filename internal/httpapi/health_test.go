package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	res := h.do(t, http.MethodGet, "/healthz", nil)
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"status":"ok"}` {
		t.Errorf("got %d %s", res.status, res.body)
	}
}

// checkCanary is in a failing check's error: the log gets it, the probe's
// body does not.
const checkCanary = "dsn=postgres://admin:hunter2@db"

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	cases := []struct {
		name   string
		checks map[string]func(context.Context) error
		status int
		want   map[string]string // check name -> status
	}{
		{"no checks is ready", nil, 200, map[string]string{}},
		{"all pass", map[string]func(context.Context) error{"store": ok, "queue": ok}, 200,
			map[string]string{"store": checkOK, "queue": checkOK}},
		{"one fails", map[string]func(context.Context) error{
			"store": ok,
			"queue": func(context.Context) error { return errors.New("queue down: " + checkCanary) },
		}, 503, map[string]string{"store": checkOK, "queue": checkFailed}},
		{"a check that ignores its context times out", map[string]func(context.Context) error{
			"store": func(context.Context) error { time.Sleep(600 * time.Millisecond); return nil },
		}, 503, map[string]string{"store": checkTimeout}},
		{"a check that honours its context times out", map[string]func(context.Context) error{
			"store": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		}, 503, map[string]string{"store": checkTimeout}},
		{"a panicking check fails", map[string]func(context.Context) error{
			"store": func(context.Context) error { panic(checkCanary) },
		}, 503, map[string]string{"store": checkFailed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(o *Options) {
				o.ReadyChecks = tc.checks
				o.ReadyCheckTimeout = 100 * time.Millisecond
			})
			start := time.Now()
			res := h.do(t, http.MethodGet, "/readyz", nil)
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("probe took %v despite a 100ms check timeout", took)
			}
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			var body readiness
			if err := json.Unmarshal(res.body, &body); err != nil {
				t.Fatal(err)
			}
			if wantStatus := map[int]string{200: "ready", 503: "unready"}[tc.status]; body.Status != wantStatus {
				t.Errorf("status %q, want %q", body.Status, wantStatus)
			}
			if len(body.Checks) != len(tc.want) {
				t.Errorf("checks %v, want %v", body.Checks, tc.want)
			}
			for name, want := range tc.want {
				if got := body.Checks[name].Status; got != want {
					t.Errorf("check %s: %q, want %q", name, got, want)
				}
			}
			if strings.Contains(string(res.body), "hunter2") {
				t.Errorf("probe body holds the error: %s", res.body)
			}
			if tc.status == 503 && !strings.Contains(h.logs.String(), "readiness check failed") {
				t.Error("failure not logged")
			}
		})
	}
}

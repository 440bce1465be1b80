package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DefaultReadyCheckTimeout bounds each readiness check when
// Options.ReadyCheckTimeout is zero.
const DefaultReadyCheckTimeout = 2 * time.Second

// Outcomes of a readiness check, as in the ReadinessCheck schema.
const (
	checkOK      = "ok"
	checkFailed  = "failed"
	checkTimeout = "timeout"
)

// readiness is the body of /readyz.
type readiness struct {
	Status string                 `json:"status"`
	Checks map[string]checkResult `json:"checks"`
}

type checkResult struct {
	Status     string `json:"status"`
	Message    string `json:"message,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// healthz answers liveness: the process serves HTTP. It checks nothing
// else, so an orchestrator does not restart a node for a database outage.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz runs every readiness check concurrently, each under its own
// timeout, and answers 200 when all pass, 503 otherwise. Causes go to the
// log; the body says only which check failed and how.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	out := readiness{Status: "ready", Checks: make(map[string]checkResult, len(s.opts.ReadyChecks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range s.opts.ReadyChecks {
		wg.Go(func() {
			res := s.runCheck(r.Context(), name, check)
			mu.Lock()
			defer mu.Unlock()
			out.Checks[name] = res
		})
	}
	wg.Wait()
	status := http.StatusOK
	for _, c := range out.Checks {
		if c.Status != checkOK {
			out.Status, status = "unready", http.StatusServiceUnavailable
		}
	}
	s.writeJSON(w, r, status, out)
}

// runCheck runs one check in its own goroutine, so a check that ignores
// its context cannot hold the probe past the timeout, and a panicking
// check fails instead of killing the process.
func (s *Server) runCheck(ctx context.Context, name string, check func(context.Context) error) checkResult {
	ctx, cancel := context.WithTimeout(ctx, s.readyTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("check panicked (%T)", v)
			}
		}()
		done <- check(ctx)
	}()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	res := checkResult{Status: checkOK, DurationMS: time.Since(start).Milliseconds()}
	switch {
	case err == nil:
		return res
	case errors.Is(err, context.DeadlineExceeded):
		res.Status, res.Message = checkTimeout, fmt.Sprintf("no answer within %s", s.readyTimeout)
	default:
		res.Status, res.Message = checkFailed, "check failed; see the server log"
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "readiness check failed",
		slog.String("request_id", requestID(ctx)),
		slog.String("check", name),
		slog.String("error", err.Error()))
	return res
}

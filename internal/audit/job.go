package audit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// VerifyArgs is the job that verifies every audit chain. The queue's
// leader inserts it periodically, so a tampered chain is noticed without
// anyone running `sealpost audit verify`.
type VerifyArgs struct{}

// Kind implements river.JobArgs.
func (VerifyArgs) Kind() string { return "audit.verify" }

// VerifyWorker works VerifyArgs: it verifies all chains, exports the
// result as metrics, logs any broken chain (account and seq only), and
// records the run on the platform chain.
type VerifyWorker struct {
	river.WorkerDefaults[VerifyArgs]
	Log    *Log
	Logger *slog.Logger

	broken      prometheus.Gauge
	lastSuccess prometheus.Gauge
}

// NewVerifyWorker returns a worker whose metrics are registered on reg.
func NewVerifyWorker(log *Log, logger *slog.Logger, reg prometheus.Registerer) (*VerifyWorker, error) {
	w := &VerifyWorker{
		Log:    log,
		Logger: logger,
		broken: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sealpost_audit_chains_broken",
			Help: "Audit chains found broken by the last periodic verification.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sealpost_audit_verify_last_run_timestamp_seconds",
			Help: "When the periodic audit verification last completed.",
		}),
	}
	for _, c := range []prometheus.Collector{w.broken, w.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register audit metrics: %w", err)
		}
	}
	return w, nil
}

// Work implements river.Worker.
func (w *VerifyWorker) Work(ctx context.Context, job *river.Job[VerifyArgs]) error {
	reports, err := w.Log.VerifyAll(ctx, nil)
	if err != nil {
		return fmt.Errorf("verify audit chains: %w", err)
	}
	broken, events := 0, int64(0)
	for _, r := range reports {
		events += r.Events
		if !r.OK() {
			broken++
			w.Logger.Error("audit chain broken", "account_id", r.AccountID, "seq", r.BrokenSeq, "problem", r.Broken)
		}
	}
	outcome := OutcomeSuccess
	if broken > 0 {
		outcome = OutcomeFailure
	}
	_, err = w.Log.Append(ctx, Event{
		ActorKind: "system", ActorID: "audit-verifier", Action: "audit.verified", Target: "audit-log", Outcome: outcome,
		Details: map[string]string{
			"chains": strconv.Itoa(len(reports)), "events": strconv.FormatInt(events, 10), "broken": strconv.Itoa(broken),
		},
	})
	if err != nil {
		return err
	}
	w.broken.Set(float64(broken))
	w.lastSuccess.SetToCurrentTime()
	return nil
}

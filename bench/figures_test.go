package bench

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// storeTargets are the dialects storetest runs on, each database fresh
// per server.
func storeTargets(t *testing.T) []StoreTarget {
	var out []StoreTarget
	for _, d := range storetest.Dialects() {
		if d == store.SQLite {
			out = append(out, StoreTarget{Name: "sqlite"})
			continue
		}
		out = append(out, StoreTarget{Name: string(d), NewDatabase: func(context.Context) (string, func(), error) {
			return storetest.URL(t, d), func() {}, nil
		}})
	}
	return out
}

func TestFiguresRunEndToEndOnEveryStore(t *testing.T) {
	dir := t.TempDir()
	cfg := FiguresConfig{Messages: 200, Domains: 3, Batch: 50, Concurrency: 4, APIMessages: 40, RelayMessages: 40,
		Sink:   SinkConfig{TempFail: 0.05, PermFail: 0.05},
		Stores: storeTargets(t), Launch: InProcessLauncher(dir + "/server.log"), Dir: dir, Log: t.Logf,
		ServerEnv: []string{"SEALPOST_LOG_LEVEL=warn", "SEALPOST_QUEUE_POLL_INTERVAL=100ms"}}
	if err := PostfixAvailable(); err != nil {
		t.Logf("Postfix comparison (b) skipped: %v", err)
	} else {
		cfg.Postfix = &PostfixConfig{}
	}
	rep, err := Figures(context.Background(), cfg)
	if err != nil {
		logErrors(t, dir+"/server.log")
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range rep.Figures {
		seen[f.ID]++
		if f.PerSecond() <= 0 || f.P50 <= 0 || f.P99 < f.P50 {
			t.Errorf("figure %s %s %s: %+v", f.ID, f.Target, f.What, f)
		}
		if f.ID == "a" || f.ID == "b" {
			// Every message had its first attempt answered, over TLS;
			// the sink's 4xx and 5xx answers came back as deferrals
			// and bounces (retries come a minute later: not awaited).
			if f.Delivered+f.Deferred+f.Bounced != f.Messages || f.Deferred == 0 || f.Bounced == 0 || f.CPU <= 0 ||
				strings.Contains(f.Notes, "WITHOUT TLS") {
				t.Errorf("figure %s %s: %+v", f.ID, f.Target, f)
			}
		}
		if (f.ID == "a" || f.Target == "postfix+opendkim") && (f.RSASigned == 0 || f.EdSigned == 0) {
			t.Errorf("%s: messages not signed with both DKIM algorithms: rsa %d ed25519 %d", f.Target, f.RSASigned, f.EdSigned)
		}
	}
	stores := len(cfg.Stores)
	if seen["a"] != stores || seen["c"] != 2*stores || seen["d"] != stores || (cfg.Postfix != nil && seen["b"] != 1) {
		t.Fatalf("figures run: %v", seen)
	}
	table := rep.Markdown()
	for _, want := range []string{"| (a) |", "| (c) |", "| (d) |", "msg/s"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	t.Log("\n" + table)
}

func TestSinkFateIsTheSameForEveryMTA(t *testing.T) {
	k := &Sink{cfg: SinkConfig{TempFail: 0.02, PermFail: 0.01}}
	counts := map[string]int{}
	for seq := range 10000 {
		if k.Fate(seq) != k.Fate(seq) {
			t.Fatalf("fate of %d changes", seq)
		}
		counts[k.Fate(seq)]++
	}
	// The shares come out near what was asked (a hash, not a coin).
	// Small runs matter too: the first 10,000 numbers already spread.
	if counts["perm"] < 70 || counts["perm"] > 130 || counts["temp"] < 160 || counts["temp"] > 240 {
		t.Fatalf("fates %v", counts)
	}
}

func TestTreeCPUCountsThisProcess(t *testing.T) {
	if got := TreeCPU(0); got != 0 {
		t.Fatalf("pid 0 must count nothing, got %s", got)
	}
	x := 0
	for i := range 20_000_000 {
		x += i % 7
	}
	_ = x
	if TreeCPU(os.Getpid()) <= 0 {
		t.Fatal("no CPU time read for this process")
	}
}

// logErrors shows the server's error log lines (the log dies with the
// test's directory).
func logErrors(t *testing.T, path string) {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Log(line)
		}
	}
}

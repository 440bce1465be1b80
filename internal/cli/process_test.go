package cli_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/cli"
)

// The test binary doubles as the sealpost binary when this variable is
// set, so process-level behaviour (signals, exit codes) is tested on the
// real command without a separate build.
const asSealpost = "SEALPOST_TEST_AS_SEALPOST"

func TestMain(m *testing.M) {
	if os.Getenv(asSealpost) == "1" {
		os.Exit(cli.Main())
	}
	os.Exit(m.Run())
}

func TestSIGTERMDrainsAndExitsCleanly(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "serve", "--data-dir", t.TempDir(), "--http-addr", addr)
	cmd.Env = append(os.Environ(), asSealpost+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stderr)
		logs <- string(b)
	}()
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Sealpost is up") {
				close(up)
			}
		}
	}()
	select {
	case <-up:
	case <-ctx.Done():
		t.Fatal("server did not come up")
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Read the pipe to EOF (the child closing it) before Wait, which
	// closes it.
	out := <-logs
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, out)
	}
	for _, want := range []string{`"msg":"shutting down: draining requests and jobs"`, `"msg":"shutdown complete"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

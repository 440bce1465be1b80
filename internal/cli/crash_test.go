package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/store"
)

// child is `sealpost serve` in a process of its own, so it can be killed.
type child struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout strings.Builder
	up     chan struct{}
}

func startChild(t *testing.T, env []string, addr string) *child {
	t.Helper()
	c := &child{up: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "serve", "--http-addr", addr)
	c.cmd.Env = append(append(os.Environ(), asSealpost+"=1"), env...)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			c.mu.Lock()
			c.stdout.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if strings.Contains(sc.Text(), "Sealpost is up") {
				once.Do(func() { close(c.up) })
			}
		}
	}()
	select {
	case <-c.up:
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Fatal("the server did not come up")
	}
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); _ = c.cmd.Wait() })
	return c
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stdout.String()
}

var seqHeader = regexp.MustCompile(`(?m)^X-Seq: (\d+)\r$`)

// TestKill9WithTenThousandMessagesInFlight accepts 10,000 messages, kills
// the server with SIGKILL while they are being delivered, restarts it, and
// checks that every accepted message reaches the remote server. A message
// the remote accepted just before the kill, whose outcome was not yet
// committed, is sent again after the restart: the remote said 250 but we
// could not record it. Those duplicates are counted and bounded by what
// one node has in flight.
func TestKill9WithTenThousandMessagesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	const total, batch, domains = 10000, 1000, 20
	// The sink does verified TLS: under the default mode (forced TLS)
	// SecureLine never sends in clear text.
	cert, certPEM, err := smtptest.Certificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := smtptest.Start(&cert)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.Set(func(s *smtptest.Sink) { s.Delay = time.Millisecond })
	dir := t.TempDir()
	ca := filepath.Join(t.TempDir(), "sink-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEALPOST_DATA_DIR=" + dir, "SEALPOST_DELIVERY_ROUTES=*=" + sink.Addr, "SEALPOST_DELIVERY_TLS_CA_FILE=" + ca, "SEALPOST_SUBMISSION_ADDR=off",
		"SEALPOST_SUBMISSION_TLS_ADDR=off", "SEALPOST_LOG_LEVEL=warn"}
	addr := freeAddr(t)
	first := startChild(t, env, addr)
	creds := parseCreds(first.output())
	if code, out, errOut := run(t, env, "admin", "domain", "add", "clinic.example", "--skip-dns-check"); code != 0 {
		t.Fatalf("domain: %s %s", out, errOut)
	}
	key := creds["client_id"] + ":" + creds["client_secret"]

	accepted := 0
	for b := 0; b < total/batch; b++ {
		msgs := make([]map[string]any, batch)
		for i := range msgs {
			n := b*batch + i
			msgs[i] = map[string]any{"from": "reminders@clinic.example", "to": []string{fmt.Sprintf("p%d@d%d.example", n, n%domains)},
				"subject": "Reminder", "text": strings.Repeat("Your appointment is tomorrow. ", 100), "headers": map[string]string{"X-Seq": fmt.Sprint(n)}}
		}
		body, _ := json.Marshal(map[string]any{"messages": msgs})
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/messages/batch", strings.NewReader(string(body)))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Data []struct{ Status int } `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		for _, item := range out.Data {
			if item.Status == 202 {
				accepted++
			}
		}
	}
	if accepted != total {
		t.Fatalf("accepted %d of %d", accepted, total)
	}
	// Kill while delivery is under way.
	deadline := time.Now().Add(2 * time.Minute)
	for len(sink.Messages()) < total/5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	atKill := len(sink.Messages())
	if atKill >= total {
		t.Fatalf("everything was delivered before the kill (%d): slow the sink down", atKill)
	}

	startChild(t, env, addr)
	deadline = time.Now().Add(4 * time.Minute)
	seen := map[string]int{}
	for time.Now().Before(deadline) {
		seen = map[string]int{}
		for _, m := range sink.Messages() {
			if g := seqHeader.FindSubmatch(m.Data); g != nil {
				seen[string(g[1])]++
			}
		}
		if len(seen) == total {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(seen) != total {
		t.Fatalf("after the restart %d of %d distinct messages arrived", len(seen), total)
	}
	duplicates := len(sink.Messages()) - total
	t.Logf("killed at %d delivered; after the restart all %d arrived, %d of them twice", atKill, total, duplicates)
	if duplicates > 4*domains*200 {
		t.Errorf("%d duplicates: more than the node had in flight", duplicates)
	}

	// The store agrees: every recipient delivered.
	s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "sealpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline = time.Now().Add(30 * time.Second)
	var delivered int
	for time.Now().Before(deadline) {
		if err := s.Reader().QueryRow(context.Background(), "SELECT count(*) FROM message_recipients WHERE state = 'delivered'").Scan(&delivered); err != nil {
			t.Fatal(err)
		}
		if delivered == total {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if delivered != total {
		t.Errorf("%d recipients recorded delivered, want %d", delivered, total)
	}
}

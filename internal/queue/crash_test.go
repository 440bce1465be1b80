package queue_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	oscmd "os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// crashChildURL, when set, turns the test binary into a child process that
// accepts one row with its job and then waits to be killed.
const crashChildURL = "SEALPOST_TEST_QUEUE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if url := os.Getenv(crashChildURL); url != "" {
		os.Exit(acceptAndHang(url))
	}
	os.Exit(m.Run())
}

// acceptAndHang commits a row and its job in one transaction, says so on
// stdout, and blocks until SIGKILL: a node that accepted work and died.
func acceptAndHang(url string) int {
	ctx := context.Background()
	s, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	q, err := queue.New(s, queue.Options{})
	if err == nil {
		err = queue.AddWorker(q, &recordWorker{s: s})
	}
	if err == nil {
		err = insertItemWithJob(ctx, s, q, "crash-survivor", nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("accepted")
	select {}
}

func TestAcceptedJobSurvivesKill9(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			url := storetest.URL(t, d)
			s := openMigrated(t, url)
			exec(t, s.Writer(), createItems)
			exec(t, s.Writer(), createRuns)
			if d == store.SQLite {
				// The child needs the writer; this process must not hold it.
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			child := oscmd.CommandContext(ctx, os.Args[0], "-test.run=^$")
			child.Env = append(os.Environ(), crashChildURL+"="+url)
			out, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			child.Stderr = &stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(out).ReadString('\n')
			if strings.TrimSpace(line) != "accepted" {
				_ = child.Process.Kill()
				_ = child.Wait()
				t.Fatalf("child did not accept: %q %s", line, stderr.String())
			}
			if err := child.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
				t.Fatal(err)
			}
			_ = child.Wait()

			s2 := openMigrated(t, url)
			if n := count(t, s2, "SELECT count(*) FROM test_items WHERE key = 'crash-survivor'"); n != 1 {
				t.Fatalf("accepted row lost: %d rows", n)
			}
			q := newQueue(t, s2, queue.Options{})
			addWorker(t, q, &recordWorker{s: s2})
			start(t, q)
			waitFor(t, "the job to run after kill -9", 10*time.Second, func() bool { return runs(t, s2, "crash-survivor") >= 1 })
			waitFor(t, "the job to be completed", 10*time.Second, func() bool {
				return slices.Equal(jobStates(t, s2), []string{"completed"})
			})
			time.Sleep(5 * pollInterval)
			if n := runs(t, s2, "crash-survivor"); n != 1 {
				t.Fatalf("job ran %d times, want 1", n)
			}
		})
	}
}

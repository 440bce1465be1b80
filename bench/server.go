package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/internal/app"
	"github.com/sealpost/sealpost/internal/config"
)

// Server is a running Sealpost under measurement.
type Server struct {
	BaseURL string // "http://127.0.0.1:port"
	// Submission is the SMTP relay listener (STARTTLS port), "" when off.
	Submission string
	// ClientID and ClientSecret are the bootstrap API client's.
	ClientID, ClientSecret string
	// CPU returns the server's CPU time so far; CPUSource says what it
	// counts.
	CPU       func() time.Duration
	CPUSource string
	stop      func() error
}

// APIKey is the X-API-Key value of the bootstrap client.
func (s *Server) APIKey() string { return s.ClientID + ":" + s.ClientSecret }

// Stop shuts the server down and waits for it.
func (s *Server) Stop() error { return s.stop() }

// Launcher starts a Sealpost server configured by env (SEALPOST_* lines,
// the only configuration it gets) and returns it once it serves.
type Launcher func(ctx context.Context, env []string) (*Server, error)

var (
	upLine    = regexp.MustCompile(`Sealpost is up: (https?://\S+)`)
	relayLine = regexp.MustCompile(`SMTP relay: submission (\S+),`)
	credLine  = regexp.MustCompile(`(?m)^(client_id|client_secret): (\S+)$`)
)

// ExecLauncher starts `binary serve` as a child process (the real
// binary, as operators run it) with its log written to logFile. Its CPU is
// read from /proc for the child and its descendants, so the figure is the
// server's alone.
func ExecLauncher(binary, logFile string) Launcher {
	return func(ctx context.Context, env []string) (*Server, error) {
		logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(binary, "serve", "--http-addr", "127.0.0.1:0")
		cmd.Env = append(withoutSealpostEnv(os.Environ()), env...)
		cmd.Stderr = logf
		out, err := cmd.StdoutPipe()
		if err != nil {
			logf.Close()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s serve: %w", binary, err)
		}
		var waitOnce sync.Once
		var waitErr error
		wait := func() error {
			waitOnce.Do(func() { waitErr = cmd.Wait(); logf.Close() })
			return waitErr
		}
		srv, err := readStartup(out, 60*time.Second)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = wait()
			return nil, fmt.Errorf("%w (server log: %s)", err, logFile)
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
		pid := cmd.Process.Pid
		srv.CPU = func() time.Duration { return TreeCPU(pid) }
		srv.CPUSource = "server process (/proc, separate from the load generator and sink)"
		srv.stop = func() error {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- wait() }()
			select {
			case err := <-done:
				return err
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				return errors.New("server did not stop within 60s; killed")
			}
		}
		return srv, nil
	}
}

// readStartup reads serve's standard output until it says it is up,
// collecting the bootstrap credentials and the relay address on the way.
func readStartup(r io.Reader, timeout time.Duration) (*Server, error) {
	type result struct {
		srv *Server
		err error
	}
	ch := make(chan result, 1)
	go func() {
		srv := &Server{}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if g := credLine.FindStringSubmatch(line); g != nil {
				if g[1] == "client_id" {
					srv.ClientID = g[2]
				} else {
					srv.ClientSecret = g[2]
				}
			}
			if g := relayLine.FindStringSubmatch(line); g != nil && g[1] != "off" {
				srv.Submission = g[1]
			}
			if g := upLine.FindStringSubmatch(line); g != nil {
				srv.BaseURL = g[1]
				ch <- result{srv: srv}
				return
			}
		}
		ch <- result{err: errors.New("server exited before it was up")}
	}()
	select {
	case res := <-ch:
		if res.err == nil && res.srv.ClientID == "" {
			return nil, errors.New("server printed no bootstrap credentials (was the store empty?)")
		}
		return res.srv, res.err
	case <-time.After(timeout):
		return nil, fmt.Errorf("server not up after %s", timeout)
	}
}

// InProcessLauncher runs the server inside this process through package
// app (for tests, and where no binary is at hand). The CPU figure is then
// the whole process's (getrusage): server, load generator and sink
// together, an overestimate of the server's share.
func InProcessLauncher(logFile string) Launcher {
	return func(ctx context.Context, env []string) (*Server, error) {
		cfg, err := config.Load("", env)
		if err != nil {
			return nil, err
		}
		cfg.HTTP.Addr = "127.0.0.1:0"
		logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		a, err := app.Open(ctx, cfg, app.NewLogger(cfg, logf))
		if err != nil {
			logf.Close()
			return nil, err
		}
		var creds strings.Builder
		if _, err := a.Bootstrap(ctx, &creds, false); err != nil {
			a.Close()
			logf.Close()
			return nil, err
		}
		srv := &Server{}
		for _, g := range credLine.FindAllStringSubmatch(creds.String(), -1) {
			if g[1] == "client_id" {
				srv.ClientID = g[2]
			} else {
				srv.ClientSecret = g[2]
			}
		}
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		up := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- a.Serve(sctx, func(addr string) { up <- addr }) }()
		select {
		case addr := <-up:
			srv.BaseURL = "http://" + addr
		case err := <-done:
			cancel()
			a.Close()
			logf.Close()
			return nil, fmt.Errorf("serve: %w", err)
		}
		srv.Submission = a.SubmissionAddrs[0]
		srv.CPU = selfCPU
		srv.CPUSource = "whole harness process (in-process server: includes load generator and sink)"
		srv.stop = func() error {
			cancel()
			err := <-done
			a.Close()
			logf.Close()
			return err
		}
		return srv, nil
	}
}

// withoutSealpostEnv drops SEALPOST_* variables, so the server under
// measurement is configured by the harness alone.
func withoutSealpostEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SEALPOST_") {
			out = append(out, kv)
		}
	}
	return out
}

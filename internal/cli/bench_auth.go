package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sealpost/sealpost/bench"
	"github.com/sealpost/sealpost/internal/app"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/pkg/sealpostclient"
)

// runAuthBench starts the real server on a scratch database and measures
// a no-op request unauthenticated (/healthz) and authenticated by each
// scheme (/v1/whoami), reporting each as a ratio to the unauthenticated
// baseline of the same run.
func runAuthBench(ctx context.Context, env Env, d store.Dialect, pgURL string, duration time.Duration, concurrency int) error {
	dbURL, cleanup, err := scratchDatabase(ctx, d, pgURL)
	if err != nil {
		return err
	}
	defer cleanup()
	dir, err := os.MkdirTemp("", "sealpost-bench-auth-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	for k, v := range map[string]string{"data_dir": dir, "database.url": dbURL, "http.addr": "127.0.0.1:0", "log.level": "error"} {
		if err := cfg.Set(k, v); err != nil {
			return err
		}
	}
	a, err := app.Open(ctx, cfg, app.NewLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer a.Close()
	var out bytes.Buffer
	if _, err := a.Bootstrap(ctx, &out, false); err != nil {
		return err
	}
	creds := map[string]string{}
	for _, line := range bytes.Split(out.Bytes(), []byte("\n")) {
		if k, v, ok := bytes.Cut(line, []byte(": ")); ok {
			creds[string(k)] = string(v)
		}
	}
	serveCtx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(serveCtx, func(addr string) { ready <- addr }) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		stop()
		return err
	}
	defer func() { stop(); <-done }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	sess, err := sealpostclient.Open(ctx, client, base, creds["client_id"], creds["client_secret"])
	if err != nil {
		return err
	}
	cc := clientcredentials.Config{ClientID: creds["client_id"], ClientSecret: creds["client_secret"], TokenURL: base + "/oauth2/token"}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	key := creds["client_id"] + ":" + creds["client_secret"]
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(key))
	get := func(path string, set func(*http.Request) error) func() (*http.Request, error) {
		return func() (*http.Request, error) {
			r, err := http.NewRequest("GET", base+path, nil)
			if err != nil || set == nil {
				return r, err
			}
			return r, set(r)
		}
	}
	cases := []struct {
		name string
		req  func() (*http.Request, error)
	}{
		{"auth.none /healthz", get("/healthz", nil)},
		{"auth.api_key /v1/whoami", get("/v1/whoami", func(r *http.Request) error { r.Header.Set("X-API-Key", key); return nil })},
		{"auth.basic /v1/whoami", get("/v1/whoami", func(r *http.Request) error { r.Header.Set("Authorization", basic); return nil })},
		{"auth.bearer /v1/whoami", get("/v1/whoami", func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			return nil
		})},
		{"auth.hmac /v1/whoami", get("/v1/whoami", sess.Sign)},
		{"oauth.token issue", func() (*http.Request, error) {
			r, err := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
			if err != nil {
				return nil, err
			}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(creds["client_id"], creds["client_secret"])
			return r, nil
		}},
	}
	var baseline float64
	for i, c := range cases {
		r, err := bench.HTTPLoad(ctx, client, c.name, c.req, concurrency, duration)
		if err != nil {
			return err
		}
		if i == 0 {
			baseline = r.PerSecond()
		}
		fmt.Fprintf(env.Stdout, "%s  %-8s %5.2fx of unauthenticated\n", r, d, r.PerSecond()/baseline)
	}
	return nil
}

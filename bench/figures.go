package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// FiguresConfig shapes the delivery figures of issue 4: (a) end-to-end
// API 202 to remote 250 per store, (b) the same message set through
// Postfix, (c) API acceptance, (d) SMTP relay acceptance.
type FiguresConfig struct {
	Messages  int // messages in each end-to-end run ((a), (b))
	Domains   int // destination domains (one sink listener each)
	BodyBytes int // text body size (default 4,000: a 4 KB message)
	Sink      SinkConfig
	// AwaitRetries waits, after the first attempts, until every deferred
	// message was delivered by retry (a minute or more of backoff) and
	// reports the check; the throughput figure is always taken at the
	// last first-attempt answer.
	AwaitRetries bool
	// Batch is the messages per POST /v1/messages/batch in (a) and (c);
	// BatchClients the concurrent posters in (a).
	Batch, BatchClients int
	// APIMessages are sent in each (c) run; Concurrency is the clients of
	// (c), (d) and the Postfix submission in (b).
	APIMessages, Concurrency int
	// RelayMessages are sent through the SMTP relay in (d).
	RelayMessages int
	// Stores are the databases to measure Sealpost on.
	Stores []StoreTarget
	// Launch starts a Sealpost server.
	Launch Launcher
	// ServerEnv is extra SEALPOST_* configuration for every server.
	ServerEnv []string
	// Postfix, when set, runs (b).
	Postfix *PostfixConfig
	// Skip names figures not to run: "a", "b", "c", "d".
	Skip map[string]bool
	// Dir holds the run's files (logs, keys, scratch data); kept after.
	Dir string
	// Log prints progress lines for operators.
	Log func(format string, args ...any)
}

// StoreTarget is one database to run Sealpost on.
type StoreTarget struct {
	Name string // "sqlite", "postgres"
	// NewDatabase returns the URL of a fresh, empty database ("" means
	// SQLite in the server's data directory) and its removal.
	NewDatabase func(ctx context.Context) (string, func(), error)
}

// Figure is one measured line of the report.
type Figure struct {
	ID       string // "a", "b", "c", "d"
	What     string // what was measured
	Target   string // "sealpost/sqlite", "postfix+opendkim", ...
	Messages int
	Elapsed  time.Duration
	CPU      time.Duration // 0 when not measured
	P50, P99 time.Duration
	// Delivered, Deferred and Bounced count the end-to-end messages the
	// sink accepted, refused with 4xx at least once, and refused with 5xx.
	Delivered, Deferred, Bounced int
	// RSASigned and EdSigned count the messages that reached the sink
	// with each DKIM signature (end-to-end figures only).
	RSASigned, EdSigned int
	Notes               string
}

// PerSecond is messages per second.
func (f Figure) PerSecond() float64 {
	if f.Elapsed <= 0 {
		return 0
	}
	return float64(f.Messages) / f.Elapsed.Seconds()
}

// CPUPer1000 is CPU-seconds per 1,000 messages (0 when not measured).
func (f Figure) CPUPer1000() float64 {
	if f.CPU <= 0 || f.Messages == 0 {
		return 0
	}
	return f.CPU.Seconds() / float64(f.Messages) * 1000
}

// FiguresReport is everything a run measured.
type FiguresReport struct {
	Figures   []Figure
	CPUSource string // how the Sealpost CPU was measured
	Notes     []string
}

func (c *FiguresConfig) defaults() {
	if c.Messages <= 0 {
		c.Messages = 2000
	}
	if c.Domains <= 0 {
		c.Domains = 20
	}
	if c.BodyBytes <= 0 {
		c.BodyBytes = 4000
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	if c.BatchClients <= 0 {
		c.BatchClients = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.APIMessages <= 0 {
		c.APIMessages = min(c.Messages, 10000)
	}
	if c.RelayMessages <= 0 {
		c.RelayMessages = min(c.Messages, 10000)
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	c.Sink.Domains = c.Domains
}

// world is what every run shares: the sink, DNS and the TLS trust.
type world struct {
	cfg    *FiguresConfig
	sink   *Sink
	dns    *dnstest.Server
	caFile string
	body   string
}

// Figures runs the delivery figures and returns them; a figure that
// fails ends the run with its error and what was measured before.
func Figures(ctx context.Context, cfg FiguresConfig) (FiguresReport, error) {
	cfg.defaults()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return FiguresReport{}, err
	}
	cert, certPEM, err := smtptest.Certificate("127.0.0.1", "mx.bench.example")
	if err != nil {
		return FiguresReport{}, err
	}
	w := &world{cfg: &cfg, caFile: filepath.Join(cfg.Dir, "sink-ca.pem"), body: benchBody(cfg.BodyBytes)}
	if err := os.WriteFile(w.caFile, certPEM, 0o600); err != nil {
		return FiguresReport{}, err
	}
	cfg.Sink.Cert = cert
	if w.sink, err = StartSink(cfg.Sink); err != nil {
		return FiguresReport{}, err
	}
	defer w.sink.Close()
	if w.dns, err = dnstest.Start(); err != nil {
		return FiguresReport{}, err
	}
	defer w.dns.Close()

	var rep FiguresReport
	for _, st := range cfg.Stores {
		if !cfg.Skip["a"] {
			f, src, err := w.sealpostEndToEnd(ctx, st)
			rep.CPUSource = src
			if err != nil {
				return rep, fmt.Errorf("(a) on %s: %w", st.Name, err)
			}
			rep.Figures = append(rep.Figures, f)
		}
		if !cfg.Skip["c"] || !cfg.Skip["d"] {
			fs, err := w.sealpostAcceptance(ctx, st)
			rep.Figures = append(rep.Figures, fs...)
			if err != nil {
				return rep, fmt.Errorf("(c)/(d) on %s: %w", st.Name, err)
			}
		}
	}
	if cfg.Postfix != nil && !cfg.Skip["b"] {
		runs := []bool{true}
		if cfg.Postfix.AlsoWithoutDKIM {
			runs = append(runs, false)
		}
		for _, dkim := range runs {
			f, err := w.postfixEndToEnd(ctx, dkim)
			if err != nil {
				return rep, fmt.Errorf("(b) Postfix: %w", err)
			}
			rep.Figures = append(rep.Figures, f)
		}
	}
	return rep, nil
}

// serverEnv is the configuration of a Sealpost under measurement: the
// destinations routed to their sink listeners, TLS required and checked
// against the sink's CA, DNS from the loopback server, the relay on a
// free port without a rate limit.
func (w *world) serverEnv(dataDir, dbURL string) []string {
	routes := make([]string, w.cfg.Domains)
	for d := range routes {
		routes[d] = fmt.Sprintf("d%d.example=%s", d, w.sink.Addr(d))
	}
	env := []string{
		"SEALPOST_DATA_DIR=" + dataDir,
		"SEALPOST_DNS_SERVERS=" + w.dns.Addr,
		"SEALPOST_DELIVERY_ROUTES=" + strings.Join(routes, ","),
		"SEALPOST_DELIVERY_TLS_CA_FILE=" + w.caFile,
		"SEALPOST_DELIVERY_TLS_POLICY=required",
		"SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example",
		"SEALPOST_SUBMISSION_ADDR=127.0.0.1:0",
		"SEALPOST_SUBMISSION_TLS_ADDR=off",
		"SEALPOST_SUBMISSION_RATE_PER_MINUTE=100000000",
		"SEALPOST_BOOTSTRAP_ACCOUNT_NAME=Bench",
		"SEALPOST_BOOTSTRAP_OWNER_EMAIL=bench@clinic.example",
	}
	if dbURL != "" {
		env = append(env, "SEALPOST_DATABASE_URL="+dbURL)
	}
	return append(env, w.cfg.ServerEnv...)
}

// startSealpost starts a fresh server on a fresh database of st and
// verifies the sending domain through the API, publishing its DKIM
// records in the loopback DNS.
func (w *world) startSealpost(ctx context.Context, st StoreTarget, label string) (*Server, func(), error) {
	dbURL, dropDB := "", func() {}
	if st.NewDatabase != nil {
		var err error
		if dbURL, dropDB, err = st.NewDatabase(ctx); err != nil {
			return nil, nil, err
		}
	}
	runDir := filepath.Join(w.cfg.Dir, "sealpost-"+st.Name+"-"+label)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		dropDB()
		return nil, nil, err
	}
	srv, err := w.cfg.Launch(ctx, w.serverEnv(filepath.Join(runDir, "data"), dbURL))
	if err != nil {
		dropDB()
		return nil, nil, err
	}
	stop := func() {
		if err := srv.Stop(); err != nil {
			w.cfg.Log("server stop: %v", err)
		}
		dropDB()
	}
	if err := w.verifyDomain(ctx, srv); err != nil {
		stop()
		return nil, nil, err
	}
	return srv, stop, nil
}

// verifyDomain adds clinic.example through the API, publishes the
// records it asks for and verifies it.
func (w *world) verifyDomain(ctx context.Context, srv *Server) error {
	p := newAPIPoster(srv, 1)
	status, out, err := p.post(ctx, "/v1/domains", map[string]string{"domain": "clinic.example"})
	if err != nil || status != 201 {
		return fmt.Errorf("POST /v1/domains: %d %.300s %v", status, out, err)
	}
	recs, err := requiredRecords(out)
	if err != nil {
		return err
	}
	for _, r := range recs {
		w.dns.Remove(r.Name) // a previous server's keys
		if err := w.dns.Add(r.Name + ". 60 IN TXT " + quoteTXT(r.Value)); err != nil {
			return err
		}
	}
	status, out, err = p.post(ctx, "/v1/domains/clinic.example/verify", nil)
	if err != nil || status != 200 || !strings.Contains(string(out), `"verified"`) {
		return fmt.Errorf("verify clinic.example: %d %.300s %v", status, out, err)
	}
	return nil
}

// awaitFirstAttempts polls the sink until every message 0..n-1 had its
// first attempt answered, and returns the CPU reading taken then.
func (w *world) awaitFirstAttempts(ctx context.Context, name string, n int, cpu func() time.Duration) (SinkState, time.Duration, error) {
	deadline := time.Now().Add(10*time.Minute + time.Duration(n)*10*time.Millisecond)
	var lastLog time.Time
	for {
		st := w.sink.State(n)
		if st.FirstAttempt >= n {
			return st, cpu(), nil
		}
		if time.Since(lastLog) >= 2*time.Second {
			w.cfg.Log("%s: %d/%d first attempts answered (%d delivered)", name, st.FirstAttempt, n, st.Delivered)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return st, 0, fmt.Errorf("only %d of %d messages reached the sink", st.FirstAttempt, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitRetries waits until every deferred message was delivered.
func (w *world) awaitRetries(ctx context.Context, name string, n int, st SinkState) (string, error) {
	if !w.cfg.AwaitRetries || st.Deferred == 0 {
		return "", nil
	}
	t0 := time.Now()
	deadline := t0.Add(15 * time.Minute)
	for {
		st = w.sink.State(n)
		if st.Delivered+st.Refused >= n {
			return fmt.Sprintf("all %d deferred delivered by retry %s after the first attempts", st.Deferred, time.Since(t0).Round(time.Second)), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("%d of %d deferred messages still undelivered", n-st.Delivered-st.Refused, st.Deferred)
		}
		w.cfg.Log("%s: waiting for retries, %d of %d deferred still undelivered", name, n-st.Delivered-st.Refused, st.Deferred)
		time.Sleep(5 * time.Second)
	}
}

// endToEnd turns an accepted set and the sink's state into a figure:
// throughput from the first acceptance to the last first-attempt answer,
// latency acceptance to 250 over messages delivered at the first attempt.
func (w *world) endToEnd(id, target string, n int, start time.Time, acc *accepted, st SinkState, cpu time.Duration) Figure {
	var lat []time.Duration
	for seq := range n {
		if at, ok := w.sink.DeliveredAt(seq); ok && w.sink.Fate(seq) == "ok" {
			lat = append(lat, at.Sub(acc.at[seq]))
		}
	}
	p50, p99 := percentiles(lat)
	notes := []string{fmt.Sprintf("%d delivered, %d deferred, %d bounced", st.Delivered, st.Deferred, st.Refused)}
	if st.Plain > 0 {
		notes = append(notes, fmt.Sprintf("%d WITHOUT TLS", st.Plain))
	}
	notes = append(notes, fmt.Sprintf("DKIM rsa %d, ed25519 %d", st.RSASigned, st.EdSigned))
	return Figure{ID: id, What: "end to end: accepted → remote 250", Target: target, Messages: n, Elapsed: st.LastFirst.Sub(start),
		CPU: cpu, P50: p50, P99: p99, RSASigned: st.RSASigned, EdSigned: st.EdSigned,
		Delivered: st.Delivered, Deferred: st.Deferred, Bounced: st.Refused, Notes: strings.Join(notes, "; ")}
}

// sealpostEndToEnd is figure (a): messages posted in batches through the
// HTTP API of a fresh server, delivered to the sink.
func (w *world) sealpostEndToEnd(ctx context.Context, st StoreTarget) (Figure, string, error) {
	name := "(a) sealpost/" + st.Name
	w.cfg.Log("%s: starting a server", name)
	srv, stop, err := w.startSealpost(ctx, st, "a")
	if err != nil {
		return Figure{}, "", err
	}
	defer stop()
	w.sink.Reset()
	n := w.cfg.Messages
	acc := newAccepted(n)
	p := newAPIPoster(srv, w.cfg.BatchClients)
	cpu0 := srv.CPU()
	start := time.Now()
	err = p.postBatches(ctx, n, w.cfg.Batch, w.cfg.BatchClients, w.cfg.Domains, w.body, acc, throttled(name+" accepted", n, w.progress))
	if err != nil {
		return Figure{}, srv.CPUSource, err
	}
	state, cpu1, err := w.awaitFirstAttempts(ctx, name, n, srv.CPU)
	if err != nil {
		return Figure{}, srv.CPUSource, err
	}
	f := w.endToEnd("a", "sealpost/"+st.Name, n, start, acc, state, cpu1-cpu0)
	retry, err := w.awaitRetries(ctx, name, n, state)
	if err != nil {
		return f, srv.CPUSource, err
	}
	if retry != "" {
		f.Notes += "; " + retry
	}
	w.cfg.Log("%s: %.0f msg/s", name, f.PerSecond())
	return f, srv.CPUSource, nil
}

// sealpostAcceptance is figures (c) and (d), each on a fresh server (the
// server keeps delivering what it accepted, as in production).
func (w *world) sealpostAcceptance(ctx context.Context, st StoreTarget) ([]Figure, error) {
	type run struct {
		id, what, per string // per: what one latency sample covers
		n             int
		send          func(srv *Server, acc *accepted, progress func(int)) error
	}
	c := w.cfg
	var runs []run
	if !c.Skip["c"] {
		runs = append(runs,
			run{"c", "API accept: POST /v1/messages, " + strconv.Itoa(c.Concurrency) + " clients", "message", c.APIMessages,
				func(srv *Server, acc *accepted, pr func(int)) error {
					return newAPIPoster(srv, c.Concurrency).postSingles(ctx, c.APIMessages, c.Concurrency, c.Domains, w.body, acc, pr)
				}},
			run{"c", "API accept: POST /v1/messages/batch ×" + strconv.Itoa(c.Batch) + ", " + strconv.Itoa(c.Concurrency) + " clients", "request", c.Messages,
				func(srv *Server, acc *accepted, pr func(int)) error {
					return newAPIPoster(srv, c.Concurrency).postBatches(ctx, c.Messages, c.Batch, c.Concurrency, c.Domains, w.body, acc, pr)
				}})
	}
	if !c.Skip["d"] {
		runs = append(runs, run{"d", "SMTP relay accept: AUTH PLAIN, " + strconv.Itoa(c.Concurrency) + " connections", "message", c.RelayMessages,
			func(srv *Server, acc *accepted, pr func(int)) error {
				if srv.Submission == "" {
					return errors.New("the server has no submission listener")
				}
				s := smtpSubmitter{addr: srv.Submission, user: srv.ClientID, password: srv.ClientSecret}
				return s.submit(ctx, c.RelayMessages, c.Concurrency, c.Domains, w.body, acc, pr)
			}})
	}
	var figs []Figure
	for i, r := range runs {
		name := fmt.Sprintf("(%s) sealpost/%s %s", r.id, st.Name, r.what)
		w.cfg.Log("%s: starting a server", name)
		srv, stop, err := w.startSealpost(ctx, st, r.id+strconv.Itoa(i))
		if err != nil {
			return figs, err
		}
		acc := newAccepted(r.n)
		start := time.Now()
		err = r.send(srv, acc, throttled(name, r.n, w.progress))
		elapsed := time.Since(start)
		stop()
		if err != nil {
			return figs, fmt.Errorf("%s: %w", name, err)
		}
		p50, p99 := percentiles(acc.lat)
		figs = append(figs, Figure{ID: r.id, What: r.what, Target: "sealpost/" + st.Name, Messages: r.n, Elapsed: elapsed,
			P50: p50, P99: p99, Notes: "latency per " + r.per})
		w.cfg.Log("%s: %.0f msg/s", name, figs[len(figs)-1].PerSecond())
	}
	return figs, nil
}

func (w *world) progress(name string, done, total int) {
	w.cfg.Log("%s: %d/%d", name, done, total)
}

// dnsRecord is one record a sending domain asks to be published.
type dnsRecord struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Required bool   `json:"required"`
}

// requiredRecords picks the required TXT records from a POST /v1/domains
// answer.
func requiredRecords(answer []byte) ([]dnsRecord, error) {
	var d struct {
		Records []dnsRecord `json:"dns_records"`
	}
	if err := json.Unmarshal(answer, &d); err != nil {
		return nil, fmt.Errorf("POST /v1/domains answer: %w", err)
	}
	var out []dnsRecord
	for _, r := range d.Records {
		if r.Required {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("POST /v1/domains asked for no DNS records")
	}
	return out, nil
}

// quoteTXT splits a TXT value into quoted strings of at most 255 bytes
// (RFC 1035 §3.3.14).
func quoteTXT(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	return strings.Join(append(parts, `"`+v+`"`), " ")
}

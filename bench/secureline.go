package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

// The SecureLine cost figures' message: from lineFrom (lineSignedFrom for
// the signed S/MIME variant, whose sender has a certificate) with
// lineSubject, a text and an HTML body that both carry lineMarker, and
// optionally an attachment named lineAttachmentName. The sink looks for
// these strings to tell content from no content.
const (
	lineFrom           = "Clinic <reminders@clinic.example>"
	lineSignedFrom     = "Clinic <results@clinic.example>"
	lineSubject        = "Your visit summary"
	lineMarker         = "SPBENCH-BODY-4F1D"
	lineAttachmentName = "spbench-visit-summary.csv"
	linePublicURL      = "https://portal.bench.example"
	lineSinkHost       = "mx.bench.example"
)

// SecureLineConfig shapes the SecureLine cost figures of issue 5: the
// added cost per message of PGP, S/MIME and the portal against TLS only,
// end to end, every variant measured on the same server in one run.
type SecureLineConfig struct {
	// Messages is sent per variant (default 2,000), one recipient each.
	Messages int
	// Rounds splits each variant's messages over this many rounds
	// (default 2); the variants run in order in even rounds and in
	// reverse in odd ones, so a server (or machine) that slows down
	// steadily over the run weighs on every variant alike.
	Rounds int
	// Domains the recipients spread over (default 4), all routed to the
	// one sink through a host name the harness DNS resolves.
	Domains int
	// BodyBytes is the size of the text and HTML bodies together
	// (default 20,000: a 20 KB message).
	BodyBytes int
	// AttachmentBytes, when positive, adds a CSV attachment that size.
	AttachmentBytes int
	// Batch is the messages per POST /v1/messages/batch (default 100);
	// BatchClients the concurrent posters (default 1).
	Batch, BatchClients int
	// UploadClients upload the recipients' keys concurrently (default 4).
	UploadClients int
	// SMIMESigned adds a variant whose sender has an S/MIME certificate,
	// so its messages are signed, then encrypted (RFC 8551 §3.6).
	SMIMESigned bool
	// Warmup TLS-only messages go first, unreported (default
	// min(200, Messages); negative: none).
	Warmup int
	// DecryptEvery: the sink decrypts every DecryptEvery-th encrypted
	// message after the measured window (0: about 200 per variant).
	DecryptEvery int
	// Store is the database the server runs on.
	Store StoreTarget
	// Launch starts the server; ServerEnv is extra SEALPOST_* for it.
	Launch    Launcher
	ServerEnv []string
	// Dir holds the run's files (server log and data, CA files); kept.
	Dir string
	// Log prints progress lines for operators.
	Log func(format string, args ...any)
}

func (c *SecureLineConfig) defaults() {
	if c.Messages <= 0 {
		c.Messages = 2000
	}
	if c.Rounds <= 0 {
		c.Rounds = 2
	}
	c.Rounds = min(c.Rounds, c.Messages)
	if c.Domains <= 0 {
		c.Domains = 4
	}
	if c.BodyBytes <= 0 {
		c.BodyBytes = 20000
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	c.BatchClients = max(c.BatchClients, 1)
	if c.UploadClients <= 0 {
		c.UploadClients = 4
	}
	if c.Warmup == 0 {
		c.Warmup = min(200, c.Messages)
	}
	if c.DecryptEvery <= 0 {
		c.DecryptEvery = max(1, c.Messages/200)
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	if c.Store.Name == "" {
		c.Store.Name = "sqlite"
	}
}

// SecureLineReport is what a run measured, one figure per variant, the
// baseline first. Figure.ID is the variant's label ("tls", "pgp",
// "smime", "smimesig", "portal"), Target its name and What what its
// recipients got; Elapsed and CPU are summed over the rounds.
type SecureLineReport struct {
	Store     string
	Figures   []Figure
	CPUSource string
	Notes     []string
}

// lineVariant is one way of protecting the message.
type lineVariant struct {
	label, name, gets string
	kind              lineKind
	from, pin         string
	// keysPath and upload put a key on file for every recipient.
	keysPath string
	upload   func(address string) (any, error)
	// signs uploads the sender's S/MIME certificate first.
	signs bool
}

// lineTally adds up a variant's rounds.
type lineTally struct {
	fig      Figure
	acc      *accepted
	opened   int
	dup      int
	perRound []float64 // CPU-s per 1,000 messages of each round
}

// lineRun is one run's shared state.
type lineRun struct {
	cfg        *SecureLineConfig
	srv        *Server
	idle       time.Duration // the idle server's CPU per second
	sink       *lineSink
	keys       *lineKeys
	api        *apiPoster
	text, html string
	attachment []byte
}

// SecureLineCost starts one server and one sink and measures every
// variant on them, in rounds: TLS only, PGP, S/MIME (and signed
// S/MIME), the portal. A message that is not what its variant claims
// ends the run with an error.
func SecureLineCost(ctx context.Context, cfg SecureLineConfig) (SecureLineReport, error) {
	cfg.defaults()
	rep := SecureLineReport{Store: cfg.Store.Name}
	r, cleanup, err := startLineRun(ctx, &cfg)
	if err != nil {
		return rep, err
	}
	defer cleanup()
	rep.CPUSource = r.srv.CPUSource
	r.idle = r.idleRate(ctx)
	cfg.Log("idle server: %s CPU per second", r.idle.Round(time.Millisecond))
	rep.Notes = append(rep.Notes, fmt.Sprintf("The idle server used %s of CPU per second (River's pollers and timers); "+
		"that is included in every figure, as it is in production.", r.idle.Round(time.Millisecond)))
	if cfg.Warmup > 0 {
		warm := lineVariant{label: "warmup", name: "warm-up", kind: kindTLS, from: lineFrom}
		if err := r.round(ctx, warm, &lineTally{acc: newAccepted(cfg.Warmup)}, 0, cfg.Warmup, cfg.Warmup); err != nil {
			return rep, fmt.Errorf("warm-up: %w", err)
		}
	}
	vs := r.variants()
	tallies := make([]*lineTally, len(vs))
	for i := range tallies {
		tallies[i] = &lineTally{acc: newAccepted(cfg.Messages)}
	}
	for round := range cfg.Rounds {
		from, to := cfg.Messages*round/cfg.Rounds, cfg.Messages*(round+1)/cfg.Rounds
		order := make([]int, len(vs))
		for i := range order {
			order[i] = i
		}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			cfg.Log("== round %d of %d: %s, messages %d-%d", round+1, cfg.Rounds, vs[i].name, from, to-1)
			if err := r.round(ctx, vs[i], tallies[i], from, to, cfg.Messages); err != nil {
				return rep, fmt.Errorf("%s, round %d: %w", vs[i].name, round+1, err)
			}
		}
	}
	for i, v := range vs {
		f := r.finish(v, tallies[i])
		cfg.Log("%s: %.0f msg/s, %.3f CPU-s per 1,000 messages", v.name, f.PerSecond(), f.CPUPer1000())
		rep.Figures = append(rep.Figures, f)
	}
	return rep, nil
}

// startLineRun makes the test PKI, starts the sink, the DNS server and
// the Sealpost server, and verifies the sending domain.
func startLineRun(ctx context.Context, cfg *SecureLineConfig) (*lineRun, func(), error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, err
	}
	keys, err := newLineKeys()
	if err != nil {
		return nil, nil, fmt.Errorf("make the test PKI: %w", err)
	}
	cert, certPEM, err := smtptest.Certificate(lineSinkHost)
	if err != nil {
		return nil, nil, err
	}
	sinkCA, smimeCA := filepath.Join(cfg.Dir, "sink-ca.pem"), filepath.Join(cfg.Dir, "smime-ca.pem")
	if err := errors.Join(os.WriteFile(sinkCA, certPEM, 0o600), os.WriteFile(smimeCA, keys.caPEM, 0o600)); err != nil {
		return nil, nil, err
	}
	sink, err := startLineSink(cert)
	if err != nil {
		return nil, nil, err
	}
	dns, err := dnstest.Start()
	if err != nil {
		sink.Close()
		return nil, nil, err
	}
	var srv *Server
	stop := func() {}
	cleanup := func() { stop(); dns.Close(); sink.Close() }
	if err := dns.Add(lineSinkHost + ". 60 IN A 127.0.0.1"); err != nil {
		cleanup()
		return nil, nil, err
	}
	if srv, stop, err = startLineServer(ctx, cfg, lineServerEnv(cfg, sink.port, dns.Addr, sinkCA, smimeCA)); err != nil {
		stop = func() {}
		cleanup()
		return nil, nil, err
	}
	if err := (&world{dns: dns}).verifyDomain(ctx, srv); err != nil {
		cleanup()
		return nil, nil, err
	}
	r := &lineRun{cfg: cfg, srv: srv, sink: sink, keys: keys, api: newAPIPoster(srv, max(cfg.BatchClients, cfg.UploadClients))}
	r.text, r.html = lineBody(cfg.BodyBytes)
	if cfg.AttachmentBytes > 0 {
		r.attachment = lineAttachment(cfg.AttachmentBytes)
	}
	return r, cleanup, nil
}

// startLineServer starts the server on a fresh database of cfg.Store.
func startLineServer(ctx context.Context, cfg *SecureLineConfig, env []string) (*Server, func(), error) {
	dbURL, dropDB := "", func() {}
	if cfg.Store.NewDatabase != nil {
		var err error
		if dbURL, dropDB, err = cfg.Store.NewDatabase(ctx); err != nil {
			return nil, nil, err
		}
		env = append(env, "SEALPOST_DATABASE_URL="+dbURL)
	}
	cfg.Log("starting a server on %s", cfg.Store.Name)
	srv, err := cfg.Launch(ctx, env)
	if err != nil {
		dropDB()
		return nil, nil, err
	}
	return srv, func() {
		if err := srv.Stop(); err != nil {
			cfg.Log("server stop: %v", err)
		}
		dropDB()
	}, nil
}

// lineServerEnv configures the server: every destination routed to the
// sink's host name (resolved by the harness DNS, so delivery verifies
// the certificate for that name), the sink's CA trusted, TLS required
// for all mail (the encrypted variants then travel like the baseline),
// the test CA as the S/MIME trust anchor, a public URL for portal links,
// the default SecureLine mode (forced_tls).
func lineServerEnv(cfg *SecureLineConfig, sinkPort int, dnsAddr, sinkCA, smimeCA string) []string {
	routes := make([]string, cfg.Domains)
	for d := range routes {
		routes[d] = fmt.Sprintf("d%d.example=%s:%d", d, lineSinkHost, sinkPort)
	}
	env := []string{
		"SEALPOST_DATA_DIR=" + filepath.Join(cfg.Dir, "data"),
		"SEALPOST_DNS_SERVERS=" + dnsAddr,
		"SEALPOST_DELIVERY_ROUTES=" + strings.Join(routes, ","),
		"SEALPOST_DELIVERY_TLS_CA_FILE=" + sinkCA,
		"SEALPOST_DELIVERY_TLS_POLICY=required",
		"SEALPOST_DELIVERY_HELO_NAME=mta.clinic.example",
		"SEALPOST_SECURELINE_SMIME_TRUST_FILE=" + smimeCA,
		"SEALPOST_HTTP_PUBLIC_URL=" + linePublicURL,
		"SEALPOST_SUBMISSION_ADDR=off",
		"SEALPOST_SUBMISSION_TLS_ADDR=off",
		"SEALPOST_BOOTSTRAP_ACCOUNT_NAME=Bench",
		"SEALPOST_BOOTSTRAP_OWNER_EMAIL=bench@clinic.example",
	}
	return append(env, cfg.ServerEnv...)
}

func (r *lineRun) variants() []lineVariant {
	vs := []lineVariant{
		{label: "tls", name: "TLS only (baseline)", gets: "the message over verified STARTTLS", kind: kindTLS, from: lineFrom},
		{label: "pgp", name: "PGP", gets: "PGP/MIME to the recipient's key (X25519), not signed", kind: kindPGP, from: lineFrom,
			keysPath: "/v1/keys/pgp", upload: r.keys.pgpUpload},
		{label: "smime", name: "S/MIME", gets: "S/MIME enveloped-data to the recipient's certificate (RSA-2048), not signed",
			kind: kindSMIME, from: lineFrom, keysPath: "/v1/keys/smime", upload: r.keys.smimeUpload},
	}
	if r.cfg.SMIMESigned {
		vs = append(vs, lineVariant{label: "smimesig", name: "S/MIME signed",
			gets: "signed with the sender's certificate (RSA-2048), then enveloped-data to the recipient's",
			kind: kindSMIMESigned, from: lineSignedFrom, keysPath: "/v1/keys/smime", upload: r.keys.smimeUpload, signs: true})
	}
	return append(vs, lineVariant{label: "portal", name: "Portal", gets: `pinned "portal": deposited, link notice over verified STARTTLS`,
		kind: kindPortal, from: lineFrom, pin: "portal"})
}

// round measures messages from..to-1 of v (of n in all): keys on file
// first (not measured), then the messages posted in batches. The window
// runs from the first request to the sink's last 250 for throughput, and
// until the server is idle again for CPU, so the work a message leaves
// behind (recording its delivery) is charged to its variant.
func (r *lineRun) round(ctx context.Context, v lineVariant, t *lineTally, from, to, n int) error {
	if err := r.putKeys(ctx, v, from, to); err != nil {
		return err
	}
	if from == 0 {
		r.sink.expect(v.label, v.kind, n, r.cfg.DecryptEvery)
	}
	r.settle(ctx)
	cpu0, start := r.srv.CPU(), time.Now()
	if err := r.post(ctx, v, from, to, t.acc, throttled(v.name+" accepted", to-from, r.progress)); err != nil {
		return err
	}
	st, err := r.await(ctx, v, to)
	if err != nil {
		return err
	}
	cpu := r.settle(ctx) - cpu0
	opened, err := r.openSamples(v)
	if err != nil {
		return err
	}
	t.fig.Messages += to - from
	t.fig.Elapsed += st.Last.Sub(start)
	t.fig.CPU += cpu
	t.opened += opened
	t.dup = st.Dup
	t.perRound = append(t.perRound, cpu.Seconds()/float64(to-from)*1000)
	return nil
}

// finish turns a variant's tally into its figure.
func (r *lineRun) finish(v lineVariant, t *lineTally) Figure {
	var lat []time.Duration
	for seq, at := range r.sink.arrivals(v.label) {
		lat = append(lat, at.Sub(t.acc.at[seq]))
	}
	f := t.fig
	f.ID, f.Target, f.What, f.Delivered = v.label, v.name, v.gets, len(lat)
	f.P50, f.P99 = percentiles(lat)
	rounds := make([]string, len(t.perRound))
	for i, c := range t.perRound {
		rounds[i] = fmt.Sprintf("%.2f", c)
	}
	f.Notes = fmt.Sprintf("all %d checked", len(lat))
	if t.opened > 0 {
		f.Notes += fmt.Sprintf(", %d decrypted", t.opened)
	}
	if t.dup > 0 {
		f.Notes += fmt.Sprintf(", %d received twice", t.dup)
	}
	f.Notes += "; CPU by round " + strings.Join(rounds, " / ")
	return f
}

// putKeys uploads the keys the variant's recipients from..to-1 (and its
// sender) need.
func (r *lineRun) putKeys(ctx context.Context, v lineVariant, from, to int) error {
	if v.signs && from == 0 {
		addr := strings.TrimSuffix(v.from[strings.IndexByte(v.from, '<')+1:], ">")
		if err := uploadKeys(ctx, r.api, "/v1/keys/smime-senders", []string{addr}, 1, r.keys.senderUpload, nil); err != nil {
			return err
		}
	}
	if v.upload == nil {
		return nil
	}
	addrs := make([]string, 0, to-from)
	for seq := from; seq < to; seq++ {
		addrs = append(addrs, lineRcpt(v.label, seq, r.cfg.Domains))
	}
	r.cfg.Log("%s: uploading %d recipient keys (not measured)", v.name, len(addrs))
	return uploadKeys(ctx, r.api, v.keysPath, addrs, r.cfg.UploadClients, v.upload, throttled(v.name+" keys uploaded", len(addrs), r.progress))
}

// idleRate measures the server's CPU per second while nothing is sent.
func (r *lineRun) idleRate(ctx context.Context) time.Duration {
	time.Sleep(time.Second)
	c0, t0 := r.srv.CPU(), time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
	return time.Duration(float64(r.srv.CPU()-c0) / time.Since(t0).Seconds())
}

// settle waits until the server spends, over a second, no more CPU than
// when idle (twice that, plus 10 ms for the /proc tick), at most a
// minute, and returns its CPU reading then.
func (r *lineRun) settle(ctx context.Context) time.Duration {
	prev := r.srv.CPU()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(time.Second)
		now := r.srv.CPU()
		if now-prev <= 2*r.idle+10*time.Millisecond {
			return now
		}
		prev = now
	}
	r.cfg.Log("the server did not fall idle within a minute; measuring on")
	return prev
}

// await polls the sink until messages 0..to-1 of v arrived; a message
// that failed its check ends the wait at once.
func (r *lineRun) await(ctx context.Context, v lineVariant, to int) (lineProgress, error) {
	deadline := time.Now().Add(10*time.Minute + time.Duration(to)*10*time.Millisecond)
	var lastLog time.Time
	for {
		st := r.sink.progress(v.label)
		if st.Bad > 0 {
			return st, fmt.Errorf("%d messages are not what the variant claims; the first: %s", st.Bad, st.FirstBad)
		}
		if st.Got >= to {
			return st, nil
		}
		if time.Since(lastLog) >= 2*time.Second {
			r.cfg.Log("%s: %d/%d at the sink", v.name, st.Got, to)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return st, fmt.Errorf("only %d of %d messages reached the sink", st.Got, to)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openSamples decrypts the sampled messages of an encrypted variant
// received since the last call.
func (r *lineRun) openSamples(v lineVariant) (int, error) {
	samples := r.sink.takeSamples(v.label)
	if v.kind != kindPGP && v.kind != kindSMIME && v.kind != kindSMIMESigned {
		return 0, nil
	}
	for seq, raw := range samples {
		if err := checkOpens(v.kind, raw, lineRcpt(v.label, seq, r.cfg.Domains), r.keys); err != nil {
			return 0, fmt.Errorf("message %d does not open as claimed: %w", seq, err)
		}
	}
	return len(samples), nil
}

func (r *lineRun) progress(name string, done, total int) { r.cfg.Log("%s: %d/%d", name, done, total) }

package bench

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// DeliveryConfig shapes the end-to-end delivery measurement.
type DeliveryConfig struct {
	Messages  int           // total messages, one recipient each
	Domains   int           // destination domains the recipients spread over
	Delay     time.Duration // the sink's delay before each reply
	BodyBytes int           // size of the text body (about the message size)
	Batch     int           // messages per acceptance batch
}

// DeliveryReport is what the delivery measurement found.
type DeliveryReport struct {
	Accept     Result // batch acceptance (202 point)
	EndToEnd   Result // first acceptance to the sink's last 250
	CPUPer1000 time.Duration
	P50, P99   time.Duration // acceptance to the sink's 250
}

var seqRe = regexp.MustCompile(`(?m)^X-Seq: (\d+)\r$`)

// Delivery accepts cfg.Messages messages through the messages service in
// batches, lets the queue deliver them over STARTTLS (ECDSA certificate)
// to a loopback sink, every message signed with RSA-2048 and Ed25519
// DKIM, the destinations resolved through a loopback DNS server, and
// measures acceptance, end-to-end throughput, CPU and latency. The sink
// runs in this process, so the CPU figure includes it (an overestimate of
// the server's share).
func Delivery(ctx context.Context, s *store.Store, cfg DeliveryConfig, p Progress) (DeliveryReport, error) {
	if cfg.Domains <= 0 {
		cfg.Domains = 20
	}
	if cfg.BodyBytes <= 0 {
		cfg.BodyBytes = 4000
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	dir, err := os.MkdirTemp("", "sealpost-bench-delivery-*")
	if err != nil {
		return DeliveryReport{}, err
	}
	defer os.RemoveAll(dir)

	cert, certPEM, err := smtptest.Certificate("*.bench.example")
	if err != nil {
		return DeliveryReport{}, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	sink, err := smtptest.Start(&cert)
	if err != nil {
		return DeliveryReport{}, err
	}
	defer sink.Close()
	sink.Set(func(k *smtptest.Sink) { k.Delay = cfg.Delay })
	_, portStr, _ := net.SplitHostPort(sink.Addr)
	port, _ := strconv.Atoi(portStr)
	dns, err := dnstest.Start()
	if err != nil {
		return DeliveryReport{}, err
	}
	defer dns.Close()
	for d := range cfg.Domains {
		if err := dns.Add(fmt.Sprintf("d%d.example. 300 IN MX 10 mx%d.bench.example.", d, d),
			fmt.Sprintf("mx%d.bench.example. 300 IN A 127.0.0.1", d)); err != nil {
			return DeliveryReport{}, err
		}
	}

	log := audit.New(s, audit.Options{})
	accts := account.NewStore(s)
	creds, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: "Bench", OwnerEmail: "bench@clinic.example", Force: true})
	if err != nil {
		return DeliveryReport{}, err
	}
	actor := account.Actor{Principal: auth.Principal{AccountID: creds.AccountID, ActorKind: auth.ActorClient, ActorID: creds.ClientID, Scopes: auth.AllScopes()}}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(dir, "master.key"), true)
	if err != nil {
		return DeliveryReport{}, err
	}
	v := vault.New(s, mk, vault.Options{})
	resolver := resolve.New([]string{dns.Addr})
	doms := domains.New(s, v, resolver, log, "bench.example")
	if _, err := doms.Register(ctx, actor, "clinic.example", true); err != nil {
		return DeliveryReport{}, err
	}
	q, err := queue.New(s, queue.Options{MaxWorkers: 50, PollInterval: 50 * time.Millisecond})
	if err != nil {
		return DeliveryReport{}, err
	}
	msgs := messages.New(s, v, doms, q, messages.Options{})
	engine, err := delivery.New(s, v, doms, resolver, delivery.Options{HeloName: "bench.example", TLSPolicy: delivery.TLSRequired,
		RootCAs: roots, Port: port, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return DeliveryReport{}, err
	}
	defer engine.Close()
	if err := queue.AddWorker(q, &delivery.DomainWorker{Engine: engine}); err != nil {
		return DeliveryReport{}, err
	}
	if err := queue.AddWorker(q, &delivery.ScanWorker{Engine: engine, Queue: q}); err != nil {
		return DeliveryReport{}, err
	}
	if err := q.AddPeriodic(delivery.ScanInterval, func() river.JobArgs { return delivery.ScanArgs{} }, true); err != nil {
		return DeliveryReport{}, err
	}
	if err := q.Start(ctx); err != nil {
		return DeliveryReport{}, err
	}
	defer func() { _ = q.Stop(context.Background()) }()

	body := strings.Repeat("Your appointment at the clinic is tomorrow at 9:00. Please bring your insurance card.\n", cfg.BodyBytes/85+1)[:cfg.BodyBytes]
	acceptedAt := make([]time.Time, cfg.Messages)
	cpu0 := cpuTime()
	start := time.Now()
	var acceptDur time.Duration
	for done := 0; done < cfg.Messages; done += cfg.Batch {
		n := min(cfg.Batch, cfg.Messages-done)
		reqs := make([]messages.Request, n)
		for i := range reqs {
			seq := done + i
			reqs[i] = messages.Request{From: "Clinic <reminders@clinic.example>", To: []string{fmt.Sprintf("p%d@d%d.example", seq, seq%cfg.Domains)},
				Subject: "Appointment reminder", Text: body, Headers: map[string]string{"X-Seq": strconv.Itoa(seq)}}
		}
		t0 := time.Now()
		res, err := msgs.SendBatch(ctx, actor, reqs)
		if err != nil {
			return DeliveryReport{}, err
		}
		acceptDur += time.Since(t0)
		now := time.Now()
		for i, r := range res {
			if r.Err != nil {
				return DeliveryReport{}, fmt.Errorf("message %d refused: %w", done+i, r.Err)
			}
			acceptedAt[done+i] = now
		}
		if p != nil {
			p("delivery.accept", done+n, cfg.Messages)
		}
	}
	// Wait for the sink to hold every message.
	deadline := time.Now().Add(30*time.Minute + time.Duration(cfg.Messages)*time.Millisecond)
	for {
		got := sink.Count()
		if p != nil {
			p("delivery.end_to_end", got, cfg.Messages)
		}
		if got >= cfg.Messages {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return DeliveryReport{}, fmt.Errorf("only %d of %d messages arrived", got, cfg.Messages)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0

	lat := make([]time.Duration, 0, cfg.Messages)
	for _, m := range sink.Messages() {
		if g := seqRe.FindSubmatch(m.Data); g != nil {
			seq, _ := strconv.Atoi(string(g[1]))
			lat = append(lat, m.At.Sub(acceptedAt[seq]))
		}
	}
	slices.Sort(lat)
	rep := DeliveryReport{
		Accept:     Result{Name: "delivery.accept.batch1000", Dialect: string(s.Dialect()), Ops: cfg.Messages, Elapsed: acceptDur},
		EndToEnd:   Result{Name: "delivery.end_to_end", Dialect: string(s.Dialect()), Ops: cfg.Messages, Elapsed: elapsed},
		CPUPer1000: time.Duration(float64(cpu) / float64(cfg.Messages) * 1000),
	}
	if len(lat) > 0 {
		rep.P50, rep.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return rep, nil
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package mtasts_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/mtasts"
	"github.com/sealpost/sealpost/internal/mtasts/mtaststest"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

const enforce = "version: STSv1\r\nmode: enforce\r\nmx: mx.patient.example\r\nmax_age: 3600\r\n"

// env is a DNS server publishing patient.example's STS record and a
// policy host with a trusted certificate.
type env struct {
	t      *testing.T
	db     *store.Store
	dns    *dnstest.Server
	https  *mtaststest.Server
	roots  *x509.CertPool
	r      *resolve.Resolver
	mu     sync.Mutex
	clock  time.Time
	client *mtasts.Client
}

func newEnv(t *testing.T, s *store.Store) *env {
	t.Helper()
	e := &env{t: t, db: s, clock: time.Now()}
	var err error
	if e.dns, err = dnstest.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.dns.Close)
	cert, certPEM, err := smtptest.Certificate("mta-sts.patient.example")
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	e.roots.AppendCertsFromPEM(certPEM)
	e.https = mtaststest.Start(cert)
	t.Cleanup(e.https.Close)
	e.https.SetPolicy("patient.example", enforce)
	e.txt("v=STSv1; id=one")
	if err := e.dns.Add("mta-sts.patient.example. 60 IN A 127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	e.r = resolve.New([]string{e.dns.Addr})
	e.client = e.newClient(e.roots)
	return e
}

func (e *env) newClient(roots *x509.CertPool) *mtasts.Client {
	return mtasts.New(e.db, e.r, mtasts.Options{RootCAs: roots, Port: e.https.Port, Timeout: 5 * time.Second, Recheck: time.Minute, Now: e.now})
}

func (e *env) txt(record string) {
	e.t.Helper()
	e.dns.Remove("_mta-sts.patient.example")
	if record == "" {
		return
	}
	if err := e.dns.Add(`_mta-sts.patient.example. 60 IN TXT "` + record + `"`); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clock = e.clock.Add(d)
}

func (e *env) get(c *mtasts.Client) *mtasts.Policy {
	e.t.Helper()
	p, _ := c.Get(context.Background(), "patient.example")
	return p
}

func TestDiscoveryFetchesOnceAndRefreshesOnNewID(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		p := e.get(e.client)
		if p == nil || p.Mode != mtasts.ModeEnforce || !p.Matches("mx.patient.example") {
			t.Fatalf("policy %+v", p)
		}
		// Within the recheck interval, and later with the same id, the
		// cached policy serves without a fetch.
		e.get(e.client)
		e.advance(2 * time.Minute)
		e.get(e.client)
		if n := e.https.Fetches(); n != 1 {
			t.Fatalf("%d fetches, want 1", n)
		}
		// A new id fetches the new policy (RFC 8461 §5.1).
		e.https.SetPolicy("patient.example", "version: STSv1\nmode: testing\nmx: *.patient.example\nmax_age: 3600\n")
		e.txt("v=STSv1; id=two")
		e.advance(2 * time.Minute)
		if p := e.get(e.client); p == nil || p.Mode != mtasts.ModeTesting || e.https.Fetches() != 2 {
			t.Fatalf("after a new id: %+v, %d fetches", p, e.https.Fetches())
		}
		// max_age passing fetches again, with the same id.
		e.advance(2 * time.Hour)
		e.get(e.client)
		if n := e.https.Fetches(); n != 3 {
			t.Fatalf("after max_age: %d fetches, want 3", n)
		}
	})
}

func TestCachedPolicySurvivesFetchFailureAndRestart(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		if p := e.get(e.client); p == nil {
			t.Fatal("no policy")
		}
		// The policy host fails and the id changes: the cached,
		// unexpired policy still applies (RFC 8461 §5.1).
		e.https.SetStatus(http.StatusInternalServerError)
		e.txt("v=STSv1; id=two")
		e.advance(2 * time.Minute)
		p, err := e.client.Get(context.Background(), "patient.example")
		if p == nil || p.Mode != mtasts.ModeEnforce || err == nil {
			t.Fatalf("fetch failed: policy %+v, error %v; want the cached policy and the error", p, err)
		}
		// The TXT record vanishes: still the cached policy.
		e.txt("")
		e.advance(2 * time.Minute)
		if p := e.get(e.client); p == nil {
			t.Fatal("TXT record gone: the cached policy was dropped")
		}
		// A restarted node (a new client on the same database) keeps it.
		restarted := e.newClient(e.roots)
		if p := e.get(restarted); p == nil || p.Mode != mtasts.ModeEnforce {
			t.Fatalf("after a restart: %+v", p)
		}
		// Once max_age passes with nothing fresh, there is no policy.
		e.advance(2 * time.Hour)
		if p := e.get(restarted); p != nil {
			t.Fatalf("expired policy still applied: %+v", p)
		}
	})
}

func TestFetchRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(e *env)
		roots func(e *env) *x509.CertPool
	}{
		{name: "a certificate not trusted is refused", roots: func(*env) *x509.CertPool { return x509.NewCertPool() }},
		{name: "a redirect is not followed", setup: func(e *env) { e.https.SetStatus(http.StatusFound) }},
		{name: "a content type other than text/plain is refused", setup: func(e *env) { e.https.SetContentType("text/html") }},
		{name: "a status other than 200 is refused", setup: func(e *env) { e.https.SetStatus(http.StatusNoContent) }},
		{name: "an invalid policy is refused", setup: func(e *env) { e.https.SetPolicy("patient.example", "version: STSv1\nmode: enforce\n") }},
		{name: "an oversized policy is refused", setup: func(e *env) {
			e.https.SetPolicy("patient.example", enforce+string(make([]byte, mtasts.MaxPolicySize)))
		}},
		{name: "two STS records mean no policy", setup: func(e *env) {
			_ = e.dns.Add(`_mta-sts.patient.example. 60 IN TXT "v=STSv1; id=other"`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				e := newEnv(t, s)
				if tt.setup != nil {
					tt.setup(e)
				}
				c := e.client
				if tt.roots != nil {
					c = e.newClient(tt.roots(e))
				}
				p, err := c.Get(context.Background(), "patient.example")
				if p != nil || err == nil {
					t.Fatalf("policy %+v, error %v; want none and an error", p, err)
				}
			})
		})
	}
}

func TestNoRecordAndModeNoneMeanNoPolicy(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		if p, err := e.client.Get(context.Background(), "other.example"); p != nil || err != nil {
			t.Fatalf("a domain without a record: %+v, %v", p, err)
		}
		e.https.SetPolicy("patient.example", "version: STSv1\nmode: none\nmax_age: 3600\n")
		if p, err := e.client.Get(context.Background(), "patient.example"); p != nil || err != nil {
			t.Fatalf("mode none: %+v, %v", p, err)
		}
	})
}

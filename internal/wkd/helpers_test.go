package wkd_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
	"github.com/sealpost/sealpost/internal/wkd"
	"github.com/sealpost/sealpost/internal/wkd/wkdtest"
)

// Domains of the test world, all served by one directory on loopback:
//
//   - patient.example has the advanced host (openpgpkey.patient.example);
//   - direct.example has none (NXDOMAIN), so lookups use the direct method;
//   - fallback.example's advanced host resolves to 127.0.0.2, where nothing
//     listens (it exists but does not answer);
//   - untrusted.example's host names are not in the certificate.
const (
	patient  = "Joe.Doe@patient.example"
	direct   = "rita@direct.example"
	fallback = "ravi@fallback.example"
)

// directory is a DNS server and a WKD server on loopback, with a
// certificate the clients it makes trust.
type directory struct {
	dns   *dnstest.Server
	https *wkdtest.Server
	roots *x509.CertPool
}

func newDirectory(t *testing.T) *directory {
	t.Helper()
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	cert, certPEM, err := smtptest.Certificate("openpgpkey.patient.example", "patient.example", "direct.example",
		"openpgpkey.fallback.example", "fallback.example")
	if err != nil {
		t.Fatal(err)
	}
	https := wkdtest.Start(cert)
	t.Cleanup(https.Close)
	if err := dns.Add("openpgpkey.patient.example. 60 IN A 127.0.0.1", "patient.example. 60 IN A 127.0.0.1",
		"direct.example. 60 IN A 127.0.0.1", "openpgpkey.fallback.example. 60 IN A 127.0.0.2",
		"fallback.example. 60 IN A 127.0.0.1", "openpgpkey.untrusted.example. 60 IN A 127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	return &directory{dns: dns, https: https, roots: roots}
}

// client returns a client of the directory that may reach loopback; opts
// may change that and the rest.
func (d *directory) client(change ...func(*wkd.ClientOptions)) *wkd.Client {
	opts := wkd.ClientOptions{Resolver: resolve.New([]string{d.dns.Addr}), RootCAs: d.roots, Port: d.https.Port,
		AllowPrivateNetworks: true}
	for _, c := range change {
		c(&opts)
	}
	return wkd.NewClient(opts)
}

// gnupgKeys are keys made once by GnuPG for the tests of this package,
// exported in binary (as directories serve them) and armored.
type gnupgKeys struct {
	joe, rita, other   string // fingerprints
	joeBin, joeArmored []byte
	ritaBin, otherBin  []byte
	joeHash            string // gpg's own --with-wkd-hash for joe
}

var (
	keysMu sync.Mutex
	shared *gnupgKeys
)

// gpgKeys makes (once per test binary) GnuPG keys for patient, direct
// and an unrelated address; it skips without gpg. The GnuPG home goes
// with the first test that asks: what later tests need is exported here.
func gpgKeys(t *testing.T) *gnupgKeys {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if shared != nil {
		return shared
	}
	g := wkdtest.NewGnuPG(t)
	k := &gnupgKeys{joe: g.GenKey("Joe Doe <" + patient + ">"), rita: g.GenKey("Rita <" + direct + ">"),
		other: g.GenKey("Somebody Else <else@elsewhere.example>")}
	k.joeBin, k.joeArmored = g.Export(k.joe, false), g.Export(k.joe, true)
	k.ritaBin, k.otherBin = g.Export(k.rita, false), g.Export(k.other, false)
	k.joeHash = g.WKDHash(k.joe)
	shared = k
	return k
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// tenants are two accounts on one store, with the uploaded keys, the
// SecureLine settings and a directory cache over it on a settable clock.
type tenants struct {
	db     *store.Store
	a, b   account.Actor
	clock  *clock
	reg    *prometheus.Registry
	cache  *wkd.Cache
	keys   *keys.Service
	sl     *secureline.Service
	finder *wkd.Finder
}

func newTenants(t *testing.T, s *store.Store, client *wkd.Client) *tenants {
	t.Helper()
	ctx := context.Background()
	w := &tenants{db: s, clock: newClock(), reg: prometheus.NewRegistry()}
	log := audit.New(s, audit.Options{})
	accts := account.NewStore(s)
	for i, who := range []*account.Actor{&w.a, &w.b} {
		creds, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: "Clinic",
			OwnerEmail: fmt.Sprintf("owner%d@clinic.example", i), Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		*who = account.Actor{Principal: auth.Principal{AccountID: creds.AccountID, ActorKind: auth.ActorClient, ActorID: creds.ClientID,
			Scopes: auth.AllScopes()}, RequestID: "req-1"}
	}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	w.keys = keys.New(s, vault.New(s, mk, vault.Options{}), log, keys.Options{})
	w.cache, err = wkd.NewCache(s, client, wkd.CacheOptions{Now: w.clock.Now, Registerer: w.reg})
	if err != nil {
		t.Fatal(err)
	}
	w.sl = secureline.New(s, secureline.Options{Audit: log})
	w.finder = wkd.NewFinder(w.keys, w.sl, w.cache)
	return w
}

// enable turns WKD on for actor's account.
func (w *tenants) enable(t *testing.T, actor account.Actor) {
	t.Helper()
	st := secureline.DefaultSettings
	st.WKDEnabled = true
	if err := w.sl.SetSettings(context.Background(), actor, st); err != nil {
		t.Fatal(err)
	}
}

// row is the account's wkd_keys entry for address.
type row struct {
	result           string
	hasMaterial      bool
	fetched, expires time.Time
}

func (w *tenants) row(t *testing.T, actor account.Actor, address string) (row, bool) {
	t.Helper()
	var r row
	var material *string
	var fetched, expires int64
	err := w.db.Reader().QueryRow(context.Background(), `SELECT result, material, fetched_at, expires_at FROM wkd_keys
		WHERE account_id = $1 AND address = $2`, actor.Principal.AccountID, strings.ToLower(address)).Scan(&r.result, &material, &fetched, &expires)
	if errors.Is(err, store.ErrNotFound) {
		return row{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	r.hasMaterial, r.fetched, r.expires = material != nil, store.FromMicros(fetched), store.FromMicros(expires)
	return r, true
}

// lookups returns the counter of lookups with result.
func (w *tenants) lookups(t *testing.T, result string) float64 {
	t.Helper()
	families, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != wkd.MetricLookups {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

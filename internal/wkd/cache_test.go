package wkd_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/wkd"
	"github.com/sealpost/sealpost/internal/wkd/wkdtest"
)

func TestCacheRemembersEachResultForItsPeriod(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	tests := []struct {
		name    string
		setup   func(d *directory)
		wantKey bool
		wantErr error
		result  string
		ttl     time.Duration
		metric  string
	}{
		{"a key found is kept 24 h", func(d *directory) { d.https.Publish(wkdtest.Advanced, patient, k.joeBin) },
			true, nil, "key", wkd.DefaultKeyTTL, "hit"},
		{"a 404 is remembered as no key for 1 h", func(d *directory) {}, false, nil, "none", wkd.DefaultNoKeyTTL, "miss"},
		{"a key for another address is remembered as no key", func(d *directory) { d.https.Publish(wkdtest.Advanced, patient, k.otherBin) },
			false, nil, "none", wkd.DefaultNoKeyTTL, "miss"},
		{"a server error is remembered for 5 min", func(d *directory) { d.https.SetStatus(http.StatusInternalServerError) },
			false, wkd.ErrUnavailable, "error", wkd.DefaultErrorTTL, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				d := newDirectory(t)
				tt.setup(d)
				w := newTenants(t, s, d.client())
				acct := w.a.Principal.AccountID
				check := func(when string) {
					t.Helper()
					key, err := w.cache.Key(ctx, acct, patient)
					if (key != nil) != tt.wantKey || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
						t.Fatalf("%s: key %v, error %v; want key %v, error %v", when, key != nil, err, tt.wantKey, tt.wantErr)
					}
				}
				check("first lookup")
				r, ok := w.row(t, w.a, patient)
				if !ok || r.result != tt.result || r.hasMaterial != tt.wantKey || r.expires.Sub(r.fetched) != tt.ttl {
					t.Fatalf("stored %+v (found %v), want result %s for %s", r, ok, tt.result, tt.ttl)
				}
				if got := w.lookups(t, tt.metric); got != 1 {
					t.Errorf("%s lookups = %v, want 1", tt.metric, got)
				}
				w.clock.advance(tt.ttl - time.Second)
				check("within the period")
				if n := len(d.https.Requests()); n != 1 {
					t.Errorf("the directory was asked %d times within the period, want once", n)
				}
				if got := w.lookups(t, "cached"); got != 1 {
					t.Errorf("cached lookups = %v, want 1", got)
				}
				w.clock.advance(time.Second)
				check("after the period")
				if n := len(d.https.Requests()); n != 2 {
					t.Errorf("the directory was asked %d times after the period, want twice", n)
				}
			})
		})
	}
}

func TestCacheRemembersAServerThatIsDownBriefly(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		d := newDirectory(t)
		d.https.Close()
		w := newTenants(t, s, d.client())
		if _, err := w.cache.Key(context.Background(), w.a.Principal.AccountID, patient); !errors.Is(err, wkd.ErrUnavailable) {
			t.Fatalf("Key: %v", err)
		}
		if r, ok := w.row(t, w.a, patient); !ok || r.result != "error" || r.hasMaterial || r.expires.Sub(r.fetched) != wkd.DefaultErrorTTL {
			t.Fatalf("stored %+v (found %v)", r, ok)
		}
	})
}

func TestCacheIsPerAccount(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := newDirectory(t)
		d.https.Publish(wkdtest.Advanced, patient, k.joeBin)
		w := newTenants(t, s, d.client())
		for _, acct := range []string{w.a.Principal.AccountID, w.b.Principal.AccountID} {
			if key, err := w.cache.Key(ctx, acct, patient); err != nil || key == nil {
				t.Fatalf("Key: %v %v", key, err)
			}
		}
		// Each account asked for itself: one account's lookups do not
		// tell another whom it writes to.
		if n := len(d.https.Requests()); n != 2 {
			t.Errorf("the directory was asked %d times for two accounts, want twice", n)
		}
		if _, ok := w.row(t, w.a, patient); !ok {
			t.Error("no entry for account a")
		}
		if _, ok := w.row(t, w.b, patient); !ok {
			t.Error("no entry for account b")
		}
	})
}

func TestConcurrentLookupsShareOneFetch(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		d := newDirectory(t)
		d.https.Publish(wkdtest.Advanced, patient, k.joeBin)
		w := newTenants(t, s, d.client())
		release := d.https.Hold()
		defer release()
		const n = 8
		acct := w.a.Principal.AccountID
		keys := make([]*pgpmime.PublicKey, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { keys[i], errs[i] = w.cache.Key(context.Background(), acct, patient) })
		}
		// Release the directory once every other lookup waits for the
		// one that asked it.
		for wkd.Waiting(w.cache, acct, "joe.doe@patient.example") < n-1 {
			time.Sleep(time.Millisecond)
		}
		release()
		wg.Wait()
		for i := range n {
			if errs[i] != nil || keys[i] == nil || keys[i].Fingerprint != k.joe {
				t.Fatalf("lookup %d: %v %v", i, keys[i], errs[i])
			}
		}
		if got := len(d.https.Requests()); got != 1 {
			t.Errorf("the directory was asked %d times, want once", got)
		}
		if hit, cached := w.lookups(t, "hit"), w.lookups(t, "cached"); hit != 1 || cached != n-1 {
			t.Errorf("hit %v, cached %v; want 1 and %d", hit, cached, n-1)
		}
	})
}

func TestCachedKeyThatExpiredSinceIsNoKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := newDirectory(t)
		d.https.Publish(wkdtest.Advanced, patient, keystest.PGP(t, patient, keystest.PGPSpec{Created: time.Now().Add(-time.Hour), Lifetime: 2 * time.Hour}))
		w := newTenants(t, s, d.client())
		if key, err := w.cache.Key(ctx, w.a.Principal.AccountID, patient); err != nil || key == nil {
			t.Fatalf("Key: %v %v", key, err)
		}
		w.clock.advance(90 * time.Minute)
		if key, err := w.cache.Key(ctx, w.a.Principal.AccountID, patient); err != nil || key != nil {
			t.Fatalf("Key after the key's expiry: %v %v", key, err)
		}
	})
}

func TestSweepDeletesOnlyExpiredEntries(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := newDirectory(t)
		d.https.Publish(wkdtest.Advanced, patient, k.joeBin)
		w := newTenants(t, s, d.client())
		acct := w.a.Principal.AccountID
		if _, err := w.cache.Key(ctx, acct, patient); err != nil {
			t.Fatal(err)
		}
		if _, err := w.cache.Key(ctx, acct, "nobody@patient.example"); err != nil {
			t.Fatal(err)
		}
		w.clock.advance(wkd.DefaultNoKeyTTL)
		if n, err := w.cache.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("Sweep: %d %v, want 1", n, err)
		}
		if _, ok := w.row(t, w.a, "nobody@patient.example"); ok {
			t.Error("the expired entry is still there")
		}
		if _, ok := w.row(t, w.a, patient); !ok {
			t.Error("the current entry was swept")
		}
	})
}

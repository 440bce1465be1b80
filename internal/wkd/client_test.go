package wkd_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/netguard"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/wkd"
	"github.com/sealpost/sealpost/internal/wkd/wkdtest"
)

func TestHashEqualsGnuPGs(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	if got := wkd.Hash("Joe.Doe"); got != k.joeHash {
		t.Errorf("Hash = %s, gpg --with-wkd-hash says %s", got, k.joeHash)
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	expired := keystest.PGP(t, patient, keystest.PGPSpec{Created: time.Now().Add(-48 * time.Hour), Lifetime: time.Hour})
	tests := []struct {
		name    string
		address string
		setup   func(s *wkdtest.Server)
		opts    func(*wkd.ClientOptions)
		method  string // the method that answered, when a key is found
		fpr     string
		noKey   bool   // ErrNoKey, else (without method) ErrUnavailable
		cause   error  // must be in the error chain
		reason  string // must be in the error's text
		hosts   []string
	}{
		{name: "a GnuPG key, binary, by the advanced method", address: patient,
			setup:  func(s *wkdtest.Server) { s.Publish(wkdtest.Advanced, patient, k.joeBin) },
			method: "advanced", fpr: k.joe, hosts: []string{"openpgpkey.patient.example"}},
		{name: "an armored key is tolerated", address: patient,
			setup:  func(s *wkdtest.Server) { s.Publish(wkdtest.Advanced, patient, k.joeArmored) },
			method: "advanced", fpr: k.joe},
		{name: "the direct method when the advanced host does not exist", address: direct,
			setup:  func(s *wkdtest.Server) { s.Publish(wkdtest.Direct, direct, k.ritaBin) },
			method: "direct", fpr: k.rita, hosts: []string{"direct.example"}},
		{name: "the direct method when the advanced host does not answer", address: fallback,
			setup: func(s *wkdtest.Server) {
				s.Publish(wkdtest.Direct, fallback, keystest.PGP(t, fallback, keystest.PGPSpec{}))
			},
			method: "direct", hosts: []string{"fallback.example"}},
		{name: "the advanced host's 404 is no key, and direct is not asked", address: patient,
			setup: func(s *wkdtest.Server) { s.Publish(wkdtest.Direct, patient, k.joeBin) },
			noKey: true, hosts: []string{"openpgpkey.patient.example"}},
		{name: "a key for another address is no key", address: patient,
			setup: func(s *wkdtest.Server) { s.Publish(wkdtest.Advanced, patient, k.otherBin) },
			noKey: true, cause: pgpmime.ErrAddressMismatch},
		{name: "an expired key is no key", address: patient,
			setup: func(s *wkdtest.Server) { s.Publish(wkdtest.Advanced, patient, expired) },
			noKey: true, cause: pgpmime.ErrKeyExpired},
		{name: "an answer that is not a key is no key", address: patient,
			setup: func(s *wkdtest.Server) { s.Publish(wkdtest.Advanced, patient, []byte("<html>hello</html>")) },
			noKey: true, cause: pgpmime.ErrMalformedKey},
		{name: "an answer over the size limit is no key", address: patient,
			setup: func(s *wkdtest.Server) { s.Publish(wkdtest.Advanced, patient, k.joeBin) },
			opts:  func(o *wkd.ClientOptions) { o.MaxKeyBytes = int64(len(k.joeBin) - 1) },
			noKey: true, reason: "larger than"},
		{name: "a redirect to http is refused", address: patient,
			setup: func(s *wkdtest.Server) {
				s.Publish(wkdtest.Advanced, patient, k.joeBin)
				s.RedirectTo("http://patient.example/key")
			}, reason: "not https"},
		{name: "a server error is unavailable", address: patient,
			setup: func(s *wkdtest.Server) { s.SetStatus(http.StatusServiceUnavailable) }, reason: "HTTP status 503"},
		{name: "a certificate that does not name the host is unavailable", address: "pat@untrusted.example", reason: "certificate"},
		{name: "loopback is refused by default", address: patient,
			setup: func(s *wkdtest.Server) { s.Publish(wkdtest.Advanced, patient, k.joeBin) },
			opts:  func(o *wkd.ClientOptions) { o.AllowPrivateNetworks = false },
			cause: netguard.ErrDestination, reason: "not allowed"},
		{name: "a domain whose hosts do not exist has no key", address: "pat@nowhere.example", noKey: true, reason: "no Web Key Directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDirectory(t)
			if tt.setup != nil {
				tt.setup(d.https)
			}
			var opts []func(*wkd.ClientOptions)
			if tt.opts != nil {
				opts = append(opts, tt.opts)
			}
			found, err := d.client(opts...).Lookup(context.Background(), tt.address)
			if tt.method != "" {
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
				if found.Method != tt.method || (tt.fpr != "" && found.Key.Fingerprint != tt.fpr) {
					t.Errorf("found %s key %s, want %s key %s", found.Method, found.Key.Fingerprint, tt.method, tt.fpr)
				}
				if _, err := pgpmime.ParsePublicKey(found.Armored, tt.address, time.Now()); err != nil {
					t.Errorf("the armored key does not parse on its own: %v", err)
				}
			} else {
				want := wkd.ErrUnavailable
				if tt.noKey {
					want = wkd.ErrNoKey
				}
				if !errors.Is(err, want) || (tt.cause != nil && !errors.Is(err, tt.cause)) {
					t.Fatalf("Lookup error %v, want %v (cause %v)", err, want, tt.cause)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("error %q does not say %q", err, tt.reason)
				}
				local := tt.address[:strings.IndexByte(tt.address, '@')]
				if msg := err.Error(); strings.Contains(msg, local) || strings.Contains(msg, "/hu/") {
					t.Errorf("the error names the address or the URL: %s", msg)
				}
			}
			if tt.hosts != nil {
				var hosts []string
				for _, r := range d.https.Requests() {
					hosts = append(hosts, r.Host)
				}
				if strings.Join(hosts, ",") != strings.Join(tt.hosts, ",") {
					t.Errorf("asked %v, want %v", hosts, tt.hosts)
				}
			}
		})
	}
}

func TestLookupSendsTheLocalPartUnchanged(t *testing.T) {
	t.Parallel()
	d := newDirectory(t)
	if _, err := d.client().Lookup(context.Background(), patient); !errors.Is(err, wkd.ErrNoKey) {
		t.Fatalf("Lookup: %v", err)
	}
	reqs := d.https.Requests()
	want := "/.well-known/openpgpkey/patient.example/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q"
	if len(reqs) != 1 || reqs[0].Path != want || reqs[0].Local != "Joe.Doe" {
		t.Fatalf("requests %+v, want one for %s with l=Joe.Doe", reqs, want)
	}
}

func TestLookupOfAServerThatIsDownIsUnavailable(t *testing.T) {
	t.Parallel()
	d := newDirectory(t)
	d.https.Close()
	_, err := d.client().Lookup(context.Background(), patient)
	if !errors.Is(err, wkd.ErrUnavailable) {
		t.Fatalf("Lookup: %v", err)
	}
}

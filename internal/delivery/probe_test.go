package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/mtasts"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// TestProbeTLS probes loopback servers: the world's sink (certificate
// trusted through the engine's roots, reached by MX after a dead MX), one
// whose certificate is not trusted, one whose certificate names another
// host, and one without STARTTLS.
func TestProbeTLS(t *testing.T) {
	t.Parallel()
	untrustedCert, _, err := smtptest.Certificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := smtptest.Start(&untrustedCert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(untrusted.Close)
	plain, err := smtptest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s, delivery.TLSOpportunistic, func(o *delivery.Options) {
			o.Routes = map[string]string{"untrusted.example": untrusted.Addr, "plain.example": plain.Addr}
		})
		// wrongname.example's MX is the world's sink, whose certificate
		// does not name it.
		w.must(w.dns.Add("wrongname.example. 60 IN MX 10 mx.wrongname.example.", "mx.wrongname.example. 60 IN A 127.0.0.1"))
		tests := []struct {
			name     string
			domain   string
			verified bool
			detail   string
		}{
			{"a trusted certificate for the MX name verifies, past a dead MX", "patient.example", true, "STARTTLS verified for mx.patient.example"},
			{"an untrusted certificate does not verify", "untrusted.example", false, "TLS does not verify"},
			{"a certificate for another name does not verify", "wrongname.example", false, "TLS does not verify"},
			{"a server without STARTTLS", "plain.example", false, "does not offer STARTTLS"},
		}
		for _, tt := range tests {
			p, err := w.engine.ProbeTLS(context.Background(), tt.domain)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if p.Verified != tt.verified || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("%s: %+v", tt.name, p)
			}
		}
		if _, err := w.engine.ProbeTLS(context.Background(), "nomail.example"); err == nil {
			t.Error("a null MX domain cannot be probed")
		}
		if n := w.sink.Count() + untrusted.Count() + plain.Count(); n != 0 {
			t.Fatalf("a probe sent %d messages", n)
		}
	})
}

func TestProbeTLSTrustsAnEnforcedMTASTSPolicy(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSTSWorld(t, s, delivery.TLSOpportunistic)
		x.publish("patient.example", "one", policy(mtasts.ModeEnforce, "*.patient.example"))
		p, err := x.engine.ProbeTLS(context.Background(), "patient.example")
		if err != nil || !p.Verified || !p.MTASTSEnforce {
			t.Fatalf("enforce: %+v %v", p, err)
		}
		x.publish("wrongname.example", "one", policy(mtasts.ModeEnforce, "mx.elsewhere.example"))
		p, err = x.engine.ProbeTLS(context.Background(), "wrongname.example")
		if err != nil || p.Verified || !p.MTASTSEnforce {
			t.Fatalf("enforce allowing no MX: %+v %v", p, err)
		}
		// Testing mode guarantees nothing: the connection decides.
		x.publish("wrongname.example", "two", policy(mtasts.ModeTesting, "mx.wrongname.example"))
		x.advance(6 * time.Minute) // past the TXT recheck interval
		p, err = x.engine.ProbeTLS(context.Background(), "wrongname.example")
		if err != nil || p.Verified || p.MTASTSEnforce {
			t.Fatalf("testing mode with a certificate for another name: %+v %v", p, err)
		}
	})
}

package keys_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestLoadPolicy(t *testing.T) {
	t.Parallel()
	ca := keystest.NewCA(t, "Mail CA")
	leaf, _ := ca.Issue(t, keystest.Leaf{Emails: []string{patient}})
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	anchors := write("ca.pem", keystest.CertPEM(ca.Cert))
	crlPEM := write("ca.crl.pem", keystest.CRLPEM(ca.CRL(t, leaf)))
	crlDER := write("ca.crl", ca.CRL(t, leaf).Raw)
	empty := write("empty.pem", []byte("no certificates here\n"))

	p, err := keys.LoadPolicy(anchors, crlPEM)
	if err != nil || p.Roots == nil || len(p.CRLs) != 1 {
		t.Fatalf("LoadPolicy = %+v, %v", p, err)
	}
	if p, err := keys.LoadPolicy("", crlDER); err != nil || p.Roots != nil || len(p.CRLs) != 1 {
		t.Fatalf("DER CRL: %+v, %v", p, err)
	}
	if p, err := keys.LoadPolicy("", ""); err != nil || p.Roots != nil || p.CRLs != nil {
		t.Fatalf("no files: %+v, %v", p, err)
	}
	for name, files := range map[string][2]string{
		"a missing anchor file is an error":        {filepath.Join(dir, "nope.pem"), ""},
		"an anchor file without certificates":      {empty, ""},
		"a CRL file that is not a CRL":             {"", empty},
		"a certificate file given as the CRL file": {"", anchors},
	} {
		if _, err := keys.LoadPolicy(files[0], files[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestInternationalizedAddressesMatchInEitherForm(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		// The key's user id spells the domain in Unicode; uploads and
		// lookups may use either form.
		st := w.uploadPGP(w.a, "Rita@Bücher.Example", keystest.PGP(t, "rita@bücher.example", keystest.PGPSpec{}))
		if st.Key.Address != "rita@xn--bcher-kva.example" || st.Key.ValidatedAs != "rita@bücher.example" {
			t.Fatalf("stored %q validated as %q", st.Key.Address, st.Key.ValidatedAs)
		}
		for _, addr := range []string{"rita@xn--bcher-kva.example", "rita@bücher.example"} {
			if pk, err := w.svc.RecipientPGP(ctx, w.a.Principal.AccountID, addr); err != nil || pk == nil {
				t.Errorf("RecipientPGP(%q) = %v, %v", addr, pk, err)
			}
		}
	})
}

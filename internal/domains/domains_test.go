package domains_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

func TestNormalize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Clinic.Example.ORG", "clinic.example.org"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"clinic.example.", "clinic.example"},
		{"localhost", ""},
		{"-bad.example", ""},
		{"a..example", ""},
		{"clinic.example\r\nX: y", ""},
		{"under_score.example", ""},
		{strings.Repeat("a", 64) + ".example", ""},
	}
	for _, c := range cases {
		got, err := domains.Normalize(c.in)
		if c.want == "" && !errors.Is(err, domains.ErrInvalid) {
			t.Errorf("%q: %q %v, want ErrInvalid", c.in, got, err)
		}
		if c.want != "" && (err != nil || got != c.want) {
			t.Errorf("%q: %q %v, want %q", c.in, got, err, c.want)
		}
	}
}

func TestAddPublishVerifyAndSign(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dnsSrv, err := dnstest.Start()
		if err != nil {
			t.Fatal(err)
		}
		defer dnsSrv.Close()
		log := audit.New(s, audit.Options{})
		accts := account.NewStore(s)
		a, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: "A", OwnerEmail: "a@a.example"})
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: "B", OwnerEmail: "b@b.example", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
		if err != nil {
			t.Fatal(err)
		}
		svc := domains.New(s, vault.New(s, mk, vault.Options{}), resolve.New([]string{dnsSrv.Addr}), log, "mta.sealpost.example")
		actorA := account.Actor{Principal: auth.Principal{AccountID: a.AccountID, ActorKind: auth.ActorClient, ActorID: a.ClientID}}
		actorB := account.Actor{Principal: auth.Principal{AccountID: b.AccountID, ActorKind: auth.ActorClient, ActorID: b.ClientID}}

		d, err := svc.Add(ctx, actorA, "Clinic.Example")
		if err != nil || d.Status != domains.StatusPending || d.Name != "clinic.example" {
			t.Fatalf("add: %+v %v", d, err)
		}
		if _, err := svc.Add(ctx, actorA, "clinic.example"); !errors.Is(err, domains.ErrExists) {
			t.Errorf("second add: %v", err)
		}
		if _, err := svc.SigningKeys(ctx, a.AccountID, "clinic.example"); !errors.Is(err, domains.ErrUnverified) {
			t.Errorf("keys of a pending domain: %v", err)
		}
		if _, err := svc.Get(ctx, b.AccountID, "clinic.example"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another account sees the domain: %v", err)
		}

		// Nothing published: still pending, and it says what is missing.
		d, err = svc.Verify(ctx, actorA, "clinic.example")
		if err != nil || d.Status != domains.StatusPending || !strings.Contains(d.CheckResult, "sp") {
			t.Fatalf("verify without records: %+v %v", d, err)
		}
		records := svc.Records(d)
		var required int
		for _, r := range records {
			if r.Required {
				required++
				// Publish as a DNS operator would, split into 255-octet strings.
				if err := dnsSrv.Add(r.Name + ". 60 IN TXT " + txtStrings(r.Value)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if required != 2 || !strings.Contains(records[2].Value, "a:mta.sealpost.example") {
			t.Fatalf("records: %+v", records)
		}
		d, err = svc.Verify(ctx, actorA, "clinic.example")
		if err != nil || d.Status != domains.StatusVerified {
			t.Fatalf("verify with records: %+v %v", d, err)
		}
		keys, err := svc.SigningKeys(ctx, a.AccountID, "clinic.example")
		if err != nil || keys.RSASelector != d.RSASelector() || keys.Ed == nil {
			t.Fatalf("keys: %+v %v", keys, err)
		}
		if _, err := svc.SigningKeys(ctx, b.AccountID, "clinic.example"); !errors.Is(err, domains.ErrUnverified) {
			t.Errorf("another account signs with the domain: %v", err)
		}

		// The operator's path needs no DNS.
		if d, err := svc.Register(ctx, actorB, "hidden.example", true); err != nil || d.Status != domains.StatusVerified {
			t.Fatalf("register without DNS: %+v %v", d, err)
		}
		if err := svc.Delete(ctx, actorA, "clinic.example"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SigningKeys(ctx, a.AccountID, "clinic.example"); !errors.Is(err, domains.ErrUnverified) {
			t.Errorf("keys after delete: %v", err)
		}
	})
}

// txtStrings quotes a TXT value as character-strings of at most 255 octets.
func txtStrings(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	return strings.Join(append(parts, `"`+v+`"`), " ")
}

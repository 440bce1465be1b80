package keys_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

const (
	patient = "rita@patients.example"
	clinic  = "noreply@clinic.example"
)

// world is two accounts on one store, a test CA that the service trusts
// (with one revoked certificate on its CRL), and a clock the test moves.
type world struct {
	t       testing.TB
	db      *store.Store
	log     *audit.Log
	svc     *keys.Service
	a, b    account.Actor
	ca      *keystest.CA
	revoked *x509.Certificate
	mu      sync.Mutex
	clock   time.Time
}

func newWorld(t testing.TB, s *store.Store) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, db: s, clock: time.Now().UTC()}
	w.log = audit.New(s, audit.Options{})
	accts := account.NewStore(s)
	for i, who := range []*account.Actor{&w.a, &w.b} {
		creds, _, err := account.Bootstrap(ctx, s, accts, w.log, account.BootstrapOptions{AccountName: "Clinic",
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
	w.ca = keystest.NewCA(t, "Test Mail CA")
	w.revoked, _ = w.ca.Issue(t, keystest.Leaf{Emails: []string{patient}})
	w.svc = keys.New(s, vault.New(s, mk, vault.Options{}), w.log, keys.Options{
		SMIME: smime.Policy{Roots: w.ca.Pool(), CRLs: []*x509.RevocationList{w.ca.CRL(t, w.revoked)}},
		Now:   w.now,
	})
	return w
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	w.clock = w.clock.Add(d)
	w.mu.Unlock()
}

func (w *world) uploadPGP(actor account.Actor, address string, armored []byte) keys.Stored {
	w.t.Helper()
	st, err := w.svc.UploadPGP(context.Background(), actor, keys.Upload{Address: address, PublicKey: string(armored)})
	if err != nil {
		w.t.Fatalf("upload PGP key: %v", err)
	}
	return st
}

func (w *world) uploadSMIME(actor account.Actor, address string, chain []byte) keys.Stored {
	w.t.Helper()
	st, err := w.svc.UploadSMIME(context.Background(), actor, keys.Upload{Address: address, Certificate: string(chain)})
	if err != nil {
		w.t.Fatalf("upload S/MIME certificate: %v", err)
	}
	return st
}

// auditActions returns the account's audit actions, oldest first.
func (w *world) auditActions(actor account.Actor) []string {
	w.t.Helper()
	page, err := w.log.List(context.Background(), actor.Principal.AccountID, audit.Query{Limit: 500})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		out = append(out, e.Action)
	}
	return out
}

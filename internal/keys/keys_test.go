package keys_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestUploadRefusesBadKeysWithTheirCause(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		other := keystest.NewCA(t, "Unrelated CA")
		expired, _ := w.ca.Issue(t, keystest.Leaf{Emails: []string{patient}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		noEncipher, _ := w.ca.Issue(t, keystest.Leaf{Emails: []string{patient}, KeyUsage: x509.KeyUsageDigitalSignature})
		tlsOnly, _ := w.ca.Issue(t, keystest.Leaf{Emails: []string{patient}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		elsewhere, _ := w.ca.Issue(t, keystest.Leaf{Emails: []string{"someone@patients.example"}})
		untrusted, _ := other.Issue(t, keystest.Leaf{Emails: []string{patient}})
		sender, senderKey := w.ca.Issue(t, keystest.Leaf{Emails: []string{clinic}})
		noSign, noSignKey := w.ca.Issue(t, keystest.Leaf{Emails: []string{clinic}, KeyUsage: x509.KeyUsageKeyEncipherment})
		pgpPrivate := keystest.ArmorPrivate(t, keystest.PGPEntity(t, patient, keystest.PGPSpec{}))
		weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		weak, _ := w.ca.Issue(t, keystest.Leaf{Emails: []string{patient}, Key: weakRSA})

		pgp := func(armored []byte) func() error {
			return func() error {
				_, err := w.svc.UploadPGP(ctx, w.a, keys.Upload{Address: patient, PublicKey: string(armored)})
				return err
			}
		}
		cert := func(c *x509.Certificate) func() error {
			return func() error {
				_, err := w.svc.UploadSMIME(ctx, w.a, keys.Upload{Address: patient, Certificate: string(keystest.CertPEM(c))})
				return err
			}
		}
		signer := func(domain string, c *x509.Certificate, keyPEM []byte) func() error {
			return func() error {
				u := keys.Upload{Address: clinic, Certificate: string(keystest.CertPEM(c)), PrivateKey: string(keyPEM)}
				if domain != "" {
					u.Address, u.Domain = "", domain
				}
				_, err := w.svc.UploadSender(ctx, w.a, u)
				return err
			}
		}
		tests := []struct {
			name   string
			upload func() error
			field  string
			cause  keys.Cause
		}{
			{"malformed armored key is refused", pgp([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64!\n-----END PGP PUBLIC KEY BLOCK-----\n")), "public_key", keys.CauseMalformed},
			{"text that is not armor is refused", pgp([]byte("ssh-ed25519 AAAA")), "public_key", keys.CauseMalformed},
			{"a private key block is refused", pgp(pgpPrivate), "public_key", keys.CauseMalformed},
			{"expired PGP key is refused", pgp(keystest.PGP(t, patient, keystest.PGPSpec{Lifetime: 30 * time.Minute})), "public_key", keys.CauseExpired},
			{"revoked PGP key is refused", pgp(keystest.PGP(t, patient, keystest.PGPSpec{Revoked: true})), "public_key", keys.CauseRevoked},
			{"PGP key without an encryption subkey is refused", pgp(keystest.PGP(t, patient, keystest.PGPSpec{SignOnly: true})), "public_key", keys.CauseWrongUsage},
			{"RSA-1024 PGP key is refused", pgp(keystest.PGP(t, patient, keystest.PGPSpec{RSABits: 1024})), "public_key", keys.CauseWeakKey},
			{"certificate with an RSA-1024 key is refused", cert(weak), "certificate", keys.CauseWeakKey},
			{"PGP key for a different address is refused", pgp(keystest.PGP(t, "someone@patients.example", keystest.PGPSpec{})), "address", keys.CauseAddressMismatch},
			{"malformed certificate is refused", func() error {
				_, err := w.svc.UploadSMIME(ctx, w.a, keys.Upload{Address: patient, Certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})
				return err
			}, "certificate", keys.CauseMalformed},
			{"expired certificate is refused", cert(expired), "certificate", keys.CauseExpired},
			{"revoked certificate is refused", cert(w.revoked), "certificate", keys.CauseRevoked},
			{"certificate without keyEncipherment is refused", cert(noEncipher), "certificate", keys.CauseWrongUsage},
			{"certificate without emailProtection is refused", cert(tlsOnly), "certificate", keys.CauseWrongUsage},
			{"certificate for a different address is refused", cert(elsewhere), "address", keys.CauseAddressMismatch},
			{"certificate from an untrusted CA is refused", cert(untrusted), "certificate", keys.CauseUntrusted},
			{"sender key that does not match the certificate is refused", signer("", sender, keystest.KeyPEM(t, keystest.RSAKey(1))), "certificate", keys.CauseKeyMismatch},
			{"sender certificate without digitalSignature is refused", signer("", noSign, keystest.KeyPEM(t, noSignKey)), "certificate", keys.CauseWrongUsage},
			{"sender certificate with no address in the domain is refused", signer("hospital.example", sender, keystest.KeyPEM(t, senderKey)), "certificate", keys.CauseAddressMismatch},
			{"encrypted private key is refused", signer("", sender, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")), "private_key", keys.CauseMalformed},
			{"garbage private key is refused", signer("", sender, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")), "private_key", keys.CauseMalformed},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.upload()
				var ve *keys.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want a ValidationError", err)
				}
				if ve.Cause != tt.cause || ve.Field != tt.field {
					t.Fatalf("cause, field = %s, %s (%v); want %s, %s", ve.Cause, ve.Field, err, tt.cause, tt.field)
				}
			})
		}
		if p, err := w.svc.List(ctx, w.a.Principal.AccountID, keys.SMIME, keys.Filter{}); err != nil || len(p.Keys) != 0 {
			t.Fatalf("refused uploads were stored: %v %v", p.Keys, err)
		}
	})
}

func TestRequestFieldsAreChecked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		armored := string(keystest.PGP(t, patient, keystest.PGPSpec{}))
		tests := []struct {
			name  string
			up    keys.Upload
			field string
		}{
			{"address is required", keys.Upload{PublicKey: armored}, "address"},
			{"public key is required", keys.Upload{Address: patient}, "public_key"},
			{"a display name is refused", keys.Upload{Address: "Rita <" + patient + ">", PublicKey: armored}, "address"},
			{"a non-address is refused", keys.Upload{Address: "rita", PublicKey: armored}, "address"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := w.svc.UploadPGP(ctx, w.a, tt.up)
				var fe *keys.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("err = %v, want a FieldError for %s", err, tt.field)
				}
			})
		}
	})
}

func TestLookupsReturnValidKeysAndSkipExpiredOnes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		acct := w.a.Principal.AccountID

		// Expires an hour from now (created an hour ago, two-hour lifetime).
		pgpStored := w.uploadPGP(w.a, "Rita@Patients.Example", keystest.PGP(t, patient, keystest.PGPSpec{Lifetime: 2 * time.Hour}))
		if pgpStored.Key.Address != patient || pgpStored.Key.Status != "valid" || pgpStored.Key.ExpiresAt.IsZero() {
			t.Fatalf("stored PGP key = %+v", pgpStored.Key)
		}
		leaf, _ := w.ca.Issue(t, keystest.Leaf{Emails: []string{patient}, NotAfter: time.Now().Add(90 * time.Minute)})
		smimeStored := w.uploadSMIME(w.a, patient, keystest.CertPEM(leaf))

		pk, err := w.svc.RecipientPGP(ctx, acct, "RITA@patients.example")
		if err != nil || pk == nil || pk.Fingerprint != pgpStored.Key.Fingerprint {
			t.Fatalf("RecipientPGP = %v, %v; want the uploaded key", pk, err)
		}
		r, err := w.svc.RecipientSMIME(ctx, acct, patient)
		if err != nil || r == nil || !bytes.Equal(r.Cert.Raw, leaf.Raw) {
			t.Fatalf("RecipientSMIME = %v, %v; want the uploaded certificate", r, err)
		}
		if pk, err := w.svc.RecipientPGP(ctx, acct, "nobody@patients.example"); pk != nil || err != nil {
			t.Fatalf("RecipientPGP for an address without keys = %v, %v; want nil, nil", pk, err)
		}

		// Two hours later both have expired: lookups find nothing, the
		// list still shows them, as expired.
		w.advance(2 * time.Hour)
		if pk, err := w.svc.RecipientPGP(ctx, acct, patient); pk != nil || err != nil {
			t.Fatalf("RecipientPGP after expiry = %v, %v; want nil, nil", pk, err)
		}
		if r, err := w.svc.RecipientSMIME(ctx, acct, patient); r != nil || err != nil {
			t.Fatalf("RecipientSMIME after expiry = %v, %v; want nil, nil", r, err)
		}
		for kind, id := range map[keys.Kind]string{keys.PGP: pgpStored.Key.ID, keys.SMIME: smimeStored.Key.ID} {
			k, err := w.svc.Get(ctx, acct, kind, id)
			if err != nil || k.Status != string(keys.CauseExpired) {
				t.Fatalf("%s key after expiry: status %q (%v), want expired", kind, k.Status, err)
			}
		}
	})
}

func TestLookupPrefersTheNewestValidKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		w.uploadPGP(w.a, patient, keystest.PGP(t, patient, keystest.PGPSpec{}))
		w.advance(time.Second)
		newer := w.uploadPGP(w.a, patient, keystest.PGP(t, patient, keystest.PGPSpec{}))
		w.advance(time.Second)
		// The newest upload expires first: then the newer valid one wins.
		w.uploadPGP(w.a, patient, keystest.PGP(t, patient, keystest.PGPSpec{Lifetime: 90 * time.Minute}))
		w.advance(time.Hour)
		pk, err := w.svc.RecipientPGP(ctx, w.a.Principal.AccountID, patient)
		if err != nil || pk == nil || pk.Fingerprint != newer.Key.Fingerprint {
			t.Fatalf("RecipientPGP = %v, %v; want the newest key still valid", pk, err)
		}
	})
}

func TestReuploadReplacesAndTheAddressHasALimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		e := keystest.PGPEntity(t, patient, keystest.PGPSpec{})
		first := w.uploadPGP(w.a, patient, keystest.ArmorPublic(t, e))
		again := w.uploadPGP(w.a, patient, keystest.ArmorPublic(t, e))
		if !again.Replaced || again.Key.ID != first.Key.ID || first.Replaced {
			t.Fatalf("re-upload: first %+v, again %+v; want the same id, replaced", first, again)
		}
		for i := 1; i < keys.MaxPerAddress; i++ {
			w.uploadPGP(w.a, patient, keystest.PGP(t, patient, keystest.PGPSpec{}))
		}
		_, err := w.svc.UploadPGP(ctx, w.a, keys.Upload{Address: patient, PublicKey: string(keystest.PGP(t, patient, keystest.PGPSpec{}))})
		if !errors.Is(err, keys.ErrTooMany) {
			t.Fatalf("upload past the limit: %v, want ErrTooMany", err)
		}
	})
}

func TestListPagesAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		acct := w.a.Principal.AccountID
		var ids []string
		for _, addr := range []string{patient, "bob@patients.example", patient} {
			ids = append(ids, w.uploadPGP(w.a, addr, keystest.PGP(t, addr, keystest.PGPSpec{})).Key.ID)
		}
		var got []string
		cursor := ""
		for range 5 {
			p, err := w.svc.List(ctx, acct, keys.PGP, keys.Filter{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range p.Keys {
				got = append(got, k.ID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("paged list = %v, want %v", got, ids)
		}
		p, err := w.svc.List(ctx, acct, keys.PGP, keys.Filter{Address: "RITA@patients.example"})
		if err != nil || len(p.Keys) != 2 || p.Keys[0].ID != ids[0] || p.Keys[1].ID != ids[2] {
			t.Fatalf("filtered list = %+v, %v", p.Keys, err)
		}
		if p, err := w.svc.List(ctx, acct, keys.SMIME, keys.Filter{}); err != nil || len(p.Keys) != 0 {
			t.Fatalf("S/MIME list holds PGP keys: %+v %v", p.Keys, err)
		}
		if _, err := w.svc.List(ctx, acct, keys.PGP, keys.Filter{Cursor: "!!"}); !errors.Is(err, keys.ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

func TestAnotherAccountsKeysAreInvisible(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		a, b := w.a.Principal.AccountID, w.b.Principal.AccountID
		pgpKey := w.uploadPGP(w.a, patient, keystest.PGP(t, patient, keystest.PGPSpec{}))
		leaf, _ := w.ca.Issue(t, keystest.Leaf{Emails: []string{patient}})
		w.uploadSMIME(w.a, patient, keystest.CertPEM(leaf))
		sender, key := w.ca.Issue(t, keystest.Leaf{Emails: []string{clinic}})
		if _, err := w.svc.UploadSender(ctx, w.a, keys.Upload{Address: clinic, Certificate: string(keystest.CertPEM(sender)),
			PrivateKey: string(keystest.KeyPEM(t, key))}); err != nil {
			t.Fatal(err)
		}

		for _, kind := range []keys.Kind{keys.PGP, keys.SMIME, keys.SMIMESender} {
			if p, err := w.svc.List(ctx, b, kind, keys.Filter{}); err != nil || len(p.Keys) != 0 {
				t.Errorf("account B lists A's %s keys: %+v %v", kind, p.Keys, err)
			}
		}
		if pk, err := w.svc.RecipientPGP(ctx, b, patient); pk != nil || err != nil {
			t.Errorf("account B finds A's PGP key: %v %v", pk, err)
		}
		if r, err := w.svc.RecipientSMIME(ctx, b, patient); r != nil || err != nil {
			t.Errorf("account B finds A's certificate: %v %v", r, err)
		}
		if sg, err := w.svc.SenderSMIME(ctx, b, clinic); sg != nil || err != nil {
			t.Errorf("account B finds A's signer: %v %v", sg, err)
		}
		if err := w.svc.Delete(ctx, w.b, keys.PGP, pgpKey.Key.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account B deletes A's key: %v, want ErrNotFound", err)
		}
		// Nor does a key of one kind delete through another kind's route.
		if err := w.svc.Delete(ctx, w.a, keys.SMIME, pgpKey.Key.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PGP key deleted as S/MIME: %v, want ErrNotFound", err)
		}
		if pk, _ := w.svc.RecipientPGP(ctx, a, patient); pk == nil {
			t.Fatal("A's key is gone after B's attempt")
		}
		if err := w.svc.Delete(ctx, w.a, keys.PGP, pgpKey.Key.ID); err != nil {
			t.Fatal(err)
		}
		if pk, _ := w.svc.RecipientPGP(ctx, a, patient); pk != nil {
			t.Fatal("deleted key still found")
		}
		acts := strings.Join(w.auditActions(w.a), " ")
		for _, want := range []string{"key.pgp.uploaded", "key.smime.uploaded", "key.smime_sender.uploaded", "key.pgp.deleted"} {
			if !strings.Contains(acts, want) {
				t.Errorf("audit log %q lacks %s", acts, want)
			}
		}
		if acts := w.auditActions(w.b); slices.ContainsFunc(acts, func(a string) bool { return strings.HasPrefix(a, "key.") }) {
			t.Errorf("account B's audit log holds key events: %v", acts)
		}
	})
}

// A lookup runs per recipient on the send path and validates the stored
// key again: this is its cost.
func BenchmarkRecipientLookup(b *testing.B) {
	s := storetest.Open(b, store.SQLite)
	w := newWorld(b, s)
	ctx := context.Background()
	w.uploadPGP(w.a, patient, keystest.PGP(b, patient, keystest.PGPSpec{}))
	leaf, _ := w.ca.Issue(b, keystest.Leaf{Emails: []string{patient}})
	w.uploadSMIME(w.a, patient, keystest.CertPEM(leaf))
	acct := w.a.Principal.AccountID
	b.Run("pgp", func(b *testing.B) {
		for b.Loop() {
			if pk, err := w.svc.RecipientPGP(ctx, acct, patient); pk == nil || err != nil {
				b.Fatal(pk, err)
			}
		}
	})
	b.Run("smime", func(b *testing.B) {
		for b.Loop() {
			if r, err := w.svc.RecipientSMIME(ctx, acct, patient); r == nil || err != nil {
				b.Fatal(r, err)
			}
		}
	})
}

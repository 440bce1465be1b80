package keys_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/ecdh"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"

	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

const passphrase = "correct horse battery staple"

func (w *world) uploadPGPSender(u keys.Upload) keys.Stored {
	w.t.Helper()
	st, err := w.svc.UploadPGPSender(context.Background(), w.a, u)
	if err != nil {
		w.t.Fatalf("upload PGP sender key: %v", err)
	}
	return st
}

// secrets returns the raw secret key material of an armored, protected
// key: what must never be stored in the clear.
func secrets(t *testing.T, armored []byte, pass string) [][]byte {
	t.Helper()
	list, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	e := list[0]
	if err := e.DecryptPrivateKeys([]byte(pass)); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, k := range append([]any{e.PrivateKey.PrivateKey}, e.Subkeys[0].PrivateKey.PrivateKey) {
		switch k := k.(type) {
		case *eddsa.PrivateKey:
			out = append(out, k.D)
		case *ecdh.PrivateKey:
			out = append(out, k.D)
		default:
			t.Fatalf("unexpected secret key type %T", k)
		}
	}
	return out
}

func TestPGPSenderKeyIsStoredUnlockedSealedAndSigns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		acct := w.a.Principal.AccountID
		e := keystest.PGPEntity(t, clinic, keystest.PGPSpec{Lifetime: 48 * time.Hour, Passphrase: passphrase})
		armored := keystest.ArmorPrivate(t, e)
		st := w.uploadPGPSender(keys.Upload{Address: "NoReply@Clinic.Example", PrivateKey: string(armored), Passphrase: passphrase})
		k := st.Key
		wantExpiry := e.PrimaryKey.CreationTime.Add(48 * time.Hour).UTC()
		if k.Kind != keys.PGPSender || k.Address != clinic || k.Domain != "" || k.ValidatedAs != clinic || k.Status != "valid" ||
			k.Fingerprint != strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)) || !k.ExpiresAt.Equal(wantExpiry) || st.Replaced {
			t.Fatalf("stored PGP sender key = %+v; want %s, expiring %v", k, clinic, wantExpiry)
		}

		// What the database holds: the public key, and a sealed blob
		// holding neither the uploaded armor nor any secret key material;
		// the passphrase is nowhere.
		var material, validatedAs string
		var sealed []byte
		if err := s.Reader().QueryRow(ctx, "SELECT material, validated_as, private_sealed FROM mail_keys WHERE account_id = $1 AND id = $2",
			acct, k.ID).Scan(&material, &validatedAs, &sealed); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(material, "BEGIN PGP PUBLIC KEY BLOCK") || strings.Contains(material, "PRIVATE") {
			t.Fatal("material is not the public key block alone")
		}
		if len(sealed) == 0 {
			t.Fatal("no sealed private key stored")
		}
		forbidden := append(secrets(t, armored, passphrase), armored, []byte(passphrase), armorBody(t, armored))
		for i, f := range forbidden {
			if bytes.Contains(sealed, f) || strings.Contains(material, string(f)) || strings.Contains(validatedAs, string(f)) {
				t.Fatalf("the stored row contains secret %d in the clear", i)
			}
		}

		// The lookup opens the key without a passphrase, and it signs.
		sk, err := w.svc.SenderPGP(ctx, acct, "NOREPLY@clinic.example")
		if err != nil || sk == nil || sk.Fingerprint != k.Fingerprint || sk.Address != clinic {
			t.Fatalf("SenderPGP = %+v, %v; want the uploaded key", sk, err)
		}
		checkSigns(t, sk, e)

		// A re-upload of the same key replaces it in place; another key
		// for the address is added.
		if re := w.uploadPGPSender(keys.Upload{Address: clinic, PrivateKey: string(armored), Passphrase: passphrase}); !re.Replaced || re.Key.ID != k.ID {
			t.Fatalf("re-upload = %+v; want the same id, replaced", re)
		}
		again := w.uploadPGPSender(keys.Upload{Address: clinic, PrivateKey: string(keystest.ArmorPrivate(t, keystest.PGPEntity(t, clinic, keystest.PGPSpec{})))})
		if again.Replaced || again.Key.ID == k.ID {
			t.Fatal("another key replaced the first")
		}

		// The sealed key is bound to its row: copied onto another key's
		// row it does not open, and the lookup fails rather than signing
		// with the wrong key.
		if _, err := s.Writer().Exec(ctx, "UPDATE mail_keys SET private_sealed = $1 WHERE account_id = $2 AND id = $3", sealed, acct, again.Key.ID); err != nil {
			t.Fatal(err)
		}
		if sk, err := w.svc.SenderPGP(ctx, acct, clinic); err == nil {
			t.Fatalf("a sealed key moved to another row opened: %v", sk)
		}

		for _, id := range []string{again.Key.ID, k.ID} {
			if err := w.svc.Delete(ctx, w.a, keys.PGPSender, id); err != nil {
				t.Fatal(err)
			}
		}
		if sk, err := w.svc.SenderPGP(ctx, acct, clinic); sk != nil || err != nil {
			t.Fatalf("SenderPGP after deletion = %v, %v; want nil, nil", sk, err)
		}
		acts := strings.Join(w.auditActions(w.a), " ")
		for _, want := range []string{"key.pgp_sender.uploaded", "key.pgp_sender.deleted"} {
			if !strings.Contains(acts, want) {
				t.Errorf("audit log %q lacks %s", acts, want)
			}
		}
	})
}

func TestPGPSenderUploadRefusesBadKeysNamingTheField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		priv := func(address string, spec keystest.PGPSpec) string {
			return string(keystest.ArmorPrivate(t, keystest.PGPEntity(t, address, spec)))
		}
		locked := priv(clinic, keystest.PGPSpec{Passphrase: passphrase})
		tests := []struct {
			name  string
			up    keys.Upload
			field string
			cause keys.Cause // "" for a FieldError
		}{
			{"wrong passphrase is refused", keys.Upload{Address: clinic, PrivateKey: locked, Passphrase: "wrong horse"}, "passphrase", keys.CauseLocked},
			{"protected key without a passphrase is refused", keys.Upload{Address: clinic, PrivateKey: locked}, "passphrase", keys.CauseLocked},
			{"public key instead of the private key is refused", keys.Upload{Address: clinic, PrivateKey: string(keystest.PGP(t, clinic, keystest.PGPSpec{}))}, "private_key", keys.CauseMalformed},
			{"malformed armor is refused", keys.Upload{Address: clinic, PrivateKey: "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot base64!\n-----END PGP PRIVATE KEY BLOCK-----\n"}, "private_key", keys.CauseMalformed},
			{"text that is not armor is refused", keys.Upload{Address: clinic, PrivateKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "private_key", keys.CauseMalformed},
			{"key for another address is refused", keys.Upload{Address: "billing@clinic.example", PrivateKey: priv(clinic, keystest.PGPSpec{})}, "address", keys.CauseAddressMismatch},
			{"key without a user id in the domain is refused", keys.Upload{Domain: "hospital.example", PrivateKey: priv(clinic, keystest.PGPSpec{})}, "domain", keys.CauseAddressMismatch},
			{"expired key is refused", keys.Upload{Address: clinic, PrivateKey: priv(clinic, keystest.PGPSpec{Lifetime: 30 * time.Minute})}, "private_key", keys.CauseExpired},
			{"revoked key is refused", keys.Upload{Address: clinic, PrivateKey: priv(clinic, keystest.PGPSpec{Revoked: true})}, "private_key", keys.CauseRevoked},
			{"key that cannot sign is refused", keys.Upload{Address: clinic, PrivateKey: priv(clinic, keystest.PGPSpec{CannotSign: true})}, "private_key", keys.CauseWrongUsage},
			{"RSA-1024 key is refused", keys.Upload{Address: clinic, PrivateKey: priv(clinic, keystest.PGPSpec{RSABits: 1024})}, "private_key", keys.CauseWeakKey},
			{"secret material of another key is refused", keys.Upload{Address: clinic, PrivateKey: priv(clinic, keystest.PGPSpec{ForeignSecret: true})}, "private_key", keys.CauseKeyMismatch},
			{"protected secret material of another key is refused", keys.Upload{Address: clinic, PrivateKey: priv(clinic, keystest.PGPSpec{ForeignSecret: true, Passphrase: passphrase}), Passphrase: passphrase}, "private_key", keys.CauseKeyMismatch},
			{"address and domain together are refused", keys.Upload{Address: clinic, Domain: "clinic.example", PrivateKey: locked, Passphrase: passphrase}, "domain", ""},
			{"neither address nor domain is refused", keys.Upload{PrivateKey: locked, Passphrase: passphrase}, "address", ""},
			{"the private key is required", keys.Upload{Address: clinic}, "private_key", ""},
			{"an overlong passphrase is refused", keys.Upload{Address: clinic, PrivateKey: locked, Passphrase: strings.Repeat("p", keys.MaxPassphraseBytes+1)}, "passphrase", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := w.svc.UploadPGPSender(ctx, w.a, tt.up)
				var ve *keys.ValidationError
				var fe *keys.FieldError
				switch {
				case tt.cause == "" && (!errors.As(err, &fe) || fe.Field != tt.field):
					t.Fatalf("err = %v, want a FieldError for %s", err, tt.field)
				case tt.cause != "" && !errors.As(err, &ve):
					t.Fatalf("err = %v, want a ValidationError", err)
				case tt.cause != "" && (ve.Cause != tt.cause || ve.Field != tt.field):
					t.Fatalf("cause, field = %s, %s (%v); want %s, %s", ve.Cause, ve.Field, err, tt.cause, tt.field)
				}
				msg := err.Error()
				if strings.Contains(msg, "BEGIN") || (tt.up.Passphrase != "" && strings.Contains(msg, tt.up.Passphrase)) {
					t.Fatalf("the error echoes the input: %v", err)
				}
			})
		}
		if p, err := w.svc.List(ctx, w.a.Principal.AccountID, keys.PGPSender, keys.Filter{}); err != nil || len(p.Keys) != 0 {
			t.Fatalf("refused uploads were stored: %v %v", p.Keys, err)
		}
	})
}

func TestPGPSenderLookupPrefersTheMailboxThenTheDomainAndSkipsExpiredKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		acct := w.a.Principal.AccountID
		const appointments = "appointments@clinic.example"
		domainKey := keystest.PGPEntity(t, clinic, keystest.PGPSpec{})
		dom := w.uploadPGPSender(keys.Upload{Domain: "Clinic.Example", PrivateKey: string(keystest.ArmorPrivate(t, domainKey))})
		if dom.Key.Domain != "clinic.example" || dom.Key.Address != "" || dom.Key.ValidatedAs != clinic {
			t.Fatalf("stored domain key = %+v", dom.Key)
		}
		sk, err := w.svc.SenderPGP(ctx, acct, appointments)
		if err != nil || sk == nil || sk.Fingerprint != dom.Key.Fingerprint || sk.Address != clinic {
			t.Fatalf("SenderPGP for an address of the domain = %+v, %v; want the domain key signing as %s", sk, err, clinic)
		}
		if sk, err := w.svc.SenderPGP(ctx, acct, "someone@hospital.example"); sk != nil || err != nil {
			t.Fatalf("SenderPGP for another domain = %v, %v; want nil, nil", sk, err)
		}

		// The mailbox's own keys win over the domain's, the newest first;
		// the newest expires an hour from now.
		w.advance(time.Second)
		older := w.uploadPGPSender(keys.Upload{Address: appointments, PrivateKey: string(keystest.ArmorPrivate(t, keystest.PGPEntity(t, appointments, keystest.PGPSpec{})))})
		w.advance(time.Second)
		newest := w.uploadPGPSender(keys.Upload{Address: appointments,
			PrivateKey: string(keystest.ArmorPrivate(t, keystest.PGPEntity(t, appointments, keystest.PGPSpec{Lifetime: 2 * time.Hour})))})
		if sk, err := w.svc.SenderPGP(ctx, acct, appointments); err != nil || sk == nil || sk.Fingerprint != newest.Key.Fingerprint {
			t.Fatalf("SenderPGP = %+v, %v; want the mailbox's newest key", sk, err)
		}
		w.advance(2 * time.Hour)
		if sk, err := w.svc.SenderPGP(ctx, acct, appointments); err != nil || sk == nil || sk.Fingerprint != older.Key.Fingerprint {
			t.Fatalf("SenderPGP after the newest expired = %+v, %v; want the older mailbox key", sk, err)
		}
		if k, err := w.svc.Get(ctx, acct, keys.PGPSender, newest.Key.ID); err != nil || k.Status != string(keys.CauseExpired) {
			t.Fatalf("expired key listed with status %q (%v), want expired", k.Status, err)
		}
		p, err := w.svc.List(ctx, acct, keys.PGPSender, keys.Filter{Address: "clinic.example"})
		if err != nil || len(p.Keys) != 1 || p.Keys[0].ID != dom.Key.ID {
			t.Fatalf("list filtered by domain = %+v, %v", p.Keys, err)
		}
		if p, err := w.svc.List(ctx, acct, keys.SMIMESender, keys.Filter{}); err != nil || len(p.Keys) != 0 {
			t.Fatalf("the S/MIME sender list holds PGP sender keys: %+v %v", p.Keys, err)
		}
	})
}

func TestAnotherAccountCannotSeeOrUseAPGPSenderKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		st := w.uploadPGPSender(keys.Upload{Address: clinic, PrivateKey: string(keystest.ArmorPrivate(t, keystest.PGPEntity(t, clinic, keystest.PGPSpec{})))})
		dom := w.uploadPGPSender(keys.Upload{Domain: "clinic.example", PrivateKey: string(keystest.ArmorPrivate(t, keystest.PGPEntity(t, clinic, keystest.PGPSpec{})))})
		b := w.b.Principal.AccountID
		if p, err := w.svc.List(ctx, b, keys.PGPSender, keys.Filter{}); err != nil || len(p.Keys) != 0 {
			t.Errorf("account B lists A's PGP sender keys: %+v %v", p.Keys, err)
		}
		for _, addr := range []string{clinic, "appointments@clinic.example"} {
			if sk, err := w.svc.SenderPGP(ctx, b, addr); sk != nil || err != nil {
				t.Errorf("account B signs as %s with A's key: %v %v", addr, sk, err)
			}
		}
		for _, id := range []string{st.Key.ID, dom.Key.ID} {
			if err := w.svc.Delete(ctx, w.b, keys.PGPSender, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("account B deletes A's key: %v, want ErrNotFound", err)
			}
			if _, err := w.svc.Get(ctx, b, keys.PGPSender, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("account B reads A's key: %v, want ErrNotFound", err)
			}
		}
		// Nor does the key delete through the S/MIME sender route.
		if err := w.svc.Delete(ctx, w.a, keys.SMIMESender, st.Key.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PGP sender key deleted as S/MIME sender: %v, want ErrNotFound", err)
		}
		if sk, err := w.svc.SenderPGP(ctx, w.a.Principal.AccountID, clinic); sk == nil || err != nil {
			t.Fatalf("A's key is gone after B's attempts: %v %v", sk, err)
		}
	})
}

// checkSigns signs and encrypts a message with sk and checks with
// go-crypto that the signature verifies against the public key of e.
func checkSigns(t *testing.T, sk *pgpmime.SigningKey, e *openpgp.Entity) {
	t.Helper()
	rcpt := keystest.PGPEntity(t, patient, keystest.PGPSpec{})
	to, err := pgpmime.ParsePublicKey(keystest.ArmorPublic(t, rcpt), patient, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgpmime.Encrypt(message(t, clinic, patient), []*pgpmime.PublicKey{to}, sk, pgpmime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(out, []byte("-----BEGIN PGP MESSAGE-----"))
	if i < 0 {
		t.Fatal("no OpenPGP message in the output")
	}
	block, err := armor.Decode(bytes.NewReader(out[i:]))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(keystest.ArmorPublic(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	md, err := openpgp.ReadMessage(block.Body, append(openpgp.EntityList{rcpt}, pub...), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(md.UnverifiedBody); err != nil {
		t.Fatal(err)
	}
	if !md.IsSigned || md.SignatureError != nil || md.SignedBy == nil {
		t.Fatalf("signature: signed %v, error %v, signer known %v", md.IsSigned, md.SignatureError, md.SignedBy != nil)
	}
}

func armorBody(t *testing.T, armored []byte) []byte {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package pgpmime_test

import (
	"errors"
	"testing"

	"github.com/sealpost/sealpost/internal/pgpmime"
)

// FuzzParsePublicKey: arbitrary uploads never panic and fail only with
// one of the documented errors.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(armorPublic(f, newEntity(f, "Rita", patient, 0)))
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ==\n=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Add([]byte("garbage"))
	known := []error{
		pgpmime.ErrMalformedKey, pgpmime.ErrNotPublicKey, pgpmime.ErrKeyExpired, pgpmime.ErrKeyRevoked,
		pgpmime.ErrNoEncryptionKey, pgpmime.ErrAddressMismatch, pgpmime.ErrWeakKey,
	}
	f.Fuzz(func(t *testing.T, armored []byte) {
		_, err := pgpmime.ParsePublicKey(armored, patient, t0)
		if err == nil {
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("undocumented error %v", err)
	})
}

// FuzzParseSigningKey: arbitrary sender key uploads (and passphrases)
// never panic and fail only with one of the documented errors.
func FuzzParseSigningKey(f *testing.F) {
	f.Add(armorPrivate(f, newEntity(f, "Clinic", clinic, 0)), []byte(""))
	locked := newEntity(f, "Clinic", clinic, 0)
	if err := locked.EncryptPrivateKeys([]byte("pw"), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(armorPrivate(f, locked), []byte("pw"))
	f.Add([]byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQ==\n=AAAA\n-----END PGP PRIVATE KEY BLOCK-----\n"), []byte("x"))
	known := []error{
		pgpmime.ErrMalformedKey, pgpmime.ErrNotPrivateKey, pgpmime.ErrKeyExpired, pgpmime.ErrKeyRevoked,
		pgpmime.ErrNoSigningKey, pgpmime.ErrAddressMismatch, pgpmime.ErrWeakKey, pgpmime.ErrLockedPrivateKey,
		pgpmime.ErrKeyPairMismatch,
	}
	f.Fuzz(func(t *testing.T, armored, passphrase []byte) {
		sk, err := pgpmime.ParseSigningKey(armored, passphrase, clinic, t0)
		if err == nil {
			if _, err := sk.ArmoredPrivate(); err != nil {
				t.Fatalf("an accepted key does not serialize: %v", err)
			}
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("undocumented error %v", err)
	})
}

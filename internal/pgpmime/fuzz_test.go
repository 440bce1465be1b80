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

package pgpmime_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/internal/pgpmime"
)

// mismatched returns a key for address whose primary secret key is
// another key's: the public key and its self-signatures are genuine, the
// secret material is not theirs.
func mismatched(t *testing.T, address string) *openpgp.Entity {
	t.Helper()
	e, other := newEntity(t, "Clinic", address, 0), newEntity(t, "Clinic", address, 0)
	swapped := *other.PrivateKey
	swapped.PublicKey = *e.PrimaryKey
	e.PrivateKey = &swapped
	return e
}

// certifyOnly returns a key whose primary key may only certify and whose
// one subkey only encrypts: nothing can sign.
func certifyOnly(t *testing.T, address string) *openpgp.Entity {
	t.Helper()
	e := newEntity(t, "Clinic", address, 0)
	for _, id := range e.Identities {
		id.SelfSignature.FlagSign = false
		if err := id.SelfSignature.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, keyConfig(0)); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func lock(t *testing.T, e *openpgp.Entity, passphrase string) *openpgp.Entity {
	t.Helper()
	if err := e.EncryptPrivateKeys([]byte(passphrase), nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSigningKeyRefusals(t *testing.T) {
	t.Parallel()
	revoked := newEntity(t, "Clinic", clinic, 0)
	if err := revoked.RevokeKey(packet.KeyCompromised, "lost laptop", keyConfig(0)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		armored    []byte
		passphrase string
		want       error
	}{
		{"secret material of another key is refused", armorPrivate(t, mismatched(t, clinic)), "", pgpmime.ErrKeyPairMismatch},
		{"protected secret material of another key is refused", armorPrivate(t, lock(t, mismatched(t, clinic), "pw")), "pw", pgpmime.ErrKeyPairMismatch},
		{"protected key without a passphrase is refused", armorPrivate(t, lock(t, newEntity(t, "Clinic", clinic, 0), "pw")), "", pgpmime.ErrLockedPrivateKey},
		{"key that cannot sign is refused", armorPrivate(t, certifyOnly(t, clinic)), "", pgpmime.ErrNoSigningKey},
		{"expired key is refused", armorPrivate(t, newEntity(t, "Clinic", clinic, 30*time.Minute)), "", pgpmime.ErrKeyExpired},
		{"revoked key is refused", armorPrivate(t, revoked), "", pgpmime.ErrKeyRevoked},
		{"armor that is not a key is refused", []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot base64!\n-----END PGP PRIVATE KEY BLOCK-----\n"), "", pgpmime.ErrMalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := pgpmime.ParseSigningKey(tt.armored, []byte(tt.passphrase), clinic, t0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseSigningKey error = %v, want %v", err, tt.want)
			}
			if tt.passphrase != "" && strings.Contains(err.Error(), tt.passphrase) {
				t.Fatalf("the error quotes the passphrase: %v", err)
			}
		})
	}
}

// A protected key is stored unlocked: what ArmoredPrivate writes reads
// back without the passphrase and signs; ArmoredPublic holds no secret.
func TestUnlockedSigningKeyRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEntity(t, "Clinic", clinic, 48*time.Hour)
	lock(t, e, "correct horse")
	sk, err := pgpmime.ParseSigningKey(armorPrivate(t, e), []byte("correct horse"), clinic, t0)
	if err != nil {
		t.Fatal(err)
	}
	wantExpiry := e.PrimaryKey.CreationTime.Add(48 * time.Hour)
	if !sk.Expires.Equal(wantExpiry) {
		t.Errorf("Expires = %v, want %v", sk.Expires, wantExpiry)
	}

	private, err := sk.ArmoredPrivate()
	if err != nil {
		t.Fatal(err)
	}
	list, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(private))
	if err != nil || len(list) != 1 {
		t.Fatalf("ArmoredPrivate does not read back: %v", err)
	}
	if list[0].PrivateKey == nil || list[0].PrivateKey.Encrypted {
		t.Fatal("the primary secret key is missing or still protected")
	}
	for _, s := range list[0].Subkeys {
		if s.PrivateKey == nil || s.PrivateKey.Encrypted {
			t.Fatal("a secret subkey is missing or still protected")
		}
	}
	again, err := pgpmime.ParseSigningKey(private, nil, clinic, t0)
	if err != nil || again.Fingerprint != sk.Fingerprint {
		t.Fatalf("the unlocked key does not parse without a passphrase: %v", err)
	}
	rita := newEntity(t, "Rita", patient, 0)
	to, err := pgpmime.ParsePublicKey(armorPublic(t, rita), patient, t0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgpmime.Encrypt(message(t, clinic, patient, "Results", 200), []*pgpmime.PublicKey{to}, again, pgpmime.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	_, armored := splitPGPMIME(t, out)
	md := readMessage(t, armored, openpgp.EntityList{rita, e})
	if !md.IsSigned || md.SignedByKeyId != e.PrimaryKey.KeyId {
		t.Fatalf("signed = %v by %X, want signed by %X", md.IsSigned, md.SignedByKeyId, e.PrimaryKey.KeyId)
	}

	public, err := sk.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(public, []byte("PRIVATE KEY")) {
		t.Fatal("ArmoredPublic is a private key block")
	}
	expires, err := pgpmime.CheckSigningPublicKey(public, clinic, t0)
	if err != nil || !expires.Equal(wantExpiry) {
		t.Fatalf("CheckSigningPublicKey = %v, %v; want %v", expires, err, wantExpiry)
	}
	if _, err := pgpmime.CheckSigningPublicKey(public, clinic, t0.Add(72*time.Hour)); !errors.Is(err, pgpmime.ErrKeyExpired) {
		t.Fatalf("CheckSigningPublicKey after expiry: %v, want ErrKeyExpired", err)
	}
	if _, err := pgpmime.CheckSigningPublicKey(armorPublic(t, certifyOnly(t, clinic)), clinic, t0); !errors.Is(err, pgpmime.ErrNoSigningKey) {
		t.Fatalf("CheckSigningPublicKey of a key that cannot sign: %v, want ErrNoSigningKey", err)
	}
}

func TestDomainSigningKeyNamesItsAddressInTheDomain(t *testing.T) {
	t.Parallel()
	e := newEntity(t, "Clinic", clinic, 0)
	if err := e.AddUserId("Billing", "", "billing@hospital.example", keyConfig(0)); err != nil {
		t.Fatal(err)
	}
	armored := armorPrivate(t, e)
	in := func(domain string) func(string) bool {
		return func(a string) bool { return strings.HasSuffix(strings.ToLower(a), "@"+domain) }
	}
	for domain, want := range map[string]string{"clinic.example": clinic, "hospital.example": "billing@hospital.example"} {
		sk, err := pgpmime.ParseDomainSigningKey(armored, nil, in(domain), t0)
		if err != nil || sk.Address != want {
			t.Errorf("domain %s: %v, %v; want the key for %s", domain, sk, err, want)
		}
	}
	if _, err := pgpmime.ParseDomainSigningKey(armored, nil, in("elsewhere.example"), t0); !errors.Is(err, pgpmime.ErrAddressMismatch) {
		t.Errorf("a domain without a user id: %v, want ErrAddressMismatch", err)
	}
	locked := armorPrivate(t, lock(t, newEntity(t, "Clinic", clinic, 0), "pw"))
	if _, err := pgpmime.ParseDomainSigningKey(locked, []byte("wrong"), in("clinic.example"), t0); !errors.Is(err, pgpmime.ErrLockedPrivateKey) {
		t.Errorf("a wrong passphrase: %v, want ErrLockedPrivateKey", err)
	}
}

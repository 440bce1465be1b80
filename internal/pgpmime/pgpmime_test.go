package pgpmime_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/internal/pgpmime"
)

const (
	patient = "rita@patients.example"
	clinic  = "noreply@clinic.example"
)

func TestParsePublicKeyRules(t *testing.T) {
	t.Parallel()
	good := newEntity(t, "Rita", patient, 0)

	expiring := newEntity(t, "Rita", patient, 30*time.Minute)

	revoked := newEntity(t, "Rita", patient, 0)
	if err := revoked.RevokeKey(packet.KeyCompromised, "lost laptop", keyConfig(0)); err != nil {
		t.Fatal(err)
	}

	subkeyRevoked := newEntity(t, "Rita", patient, 0)
	if err := subkeyRevoked.RevokeSubkey(&subkeyRevoked.Subkeys[0], packet.KeySuperseded, "", keyConfig(0)); err != nil {
		t.Fatal(err)
	}

	subkeyExpired := newEntity(t, "Rita", patient, 0)
	subkeyExpired.Subkeys = nil
	if err := subkeyExpired.AddEncryptionSubkey(keyConfig(10 * time.Minute)); err != nil {
		t.Fatal(err)
	}

	signOnly := newEntity(t, "Rita", patient, 0)
	signOnly.Subkeys = nil

	weak, err := openpgp.NewEntity("Rita", "", patient, &packet.Config{
		Algorithm: packet.PubKeyAlgoRSA, RSABits: 1024,
		Time: func() time.Time { return t0.Add(-time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}

	goodArmor := string(armorPublic(t, good))

	tests := []struct {
		name    string
		armored []byte
		address string
		want    error
	}{
		{"valid key for the address is accepted", armorPublic(t, good), patient, nil},
		{"address compares case-insensitively", armorPublic(t, good), "Rita@Patients.Example", nil},
		{"malformed armor is refused", []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n%%%%\n-----END PGP PUBLIC KEY BLOCK-----\n"), patient, pgpmime.ErrMalformedKey},
		{"text without armor is refused", []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), patient, pgpmime.ErrMalformedKey},
		{"truncated armor is refused", []byte(goodArmor[:len(goodArmor)/2]), patient, pgpmime.ErrMalformedKey},
		{"armor with a corrupted body is refused", []byte(corrupt(goodArmor)), patient, pgpmime.ErrMalformedKey},
		{"private key block is refused as a recipient key", armorPrivate(t, good), patient, pgpmime.ErrNotPublicKey},
		{"key for a different address is refused", armorPublic(t, good), "someone@patients.example", pgpmime.ErrAddressMismatch},
		{"empty address is refused", armorPublic(t, good), "", pgpmime.ErrAddressMismatch},
		{"expired key is refused", armorPublic(t, expiring), patient, pgpmime.ErrKeyExpired},
		{"revoked key is refused", armorPublic(t, revoked), patient, pgpmime.ErrKeyRevoked},
		{"key whose only encryption subkey is revoked is refused", armorPublic(t, subkeyRevoked), patient, pgpmime.ErrKeyRevoked},
		{"key whose only encryption subkey expired is refused", armorPublic(t, subkeyExpired), patient, pgpmime.ErrKeyExpired},
		{"key without an encryption-capable subkey is refused", armorPublic(t, signOnly), patient, pgpmime.ErrNoEncryptionKey},
		{"RSA key under 2048 bits is refused", armorPublic(t, weak), patient, pgpmime.ErrWeakKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := pgpmime.ParsePublicKey(tt.armored, tt.address, t0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParsePublicKey error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && k.Fingerprint == "" {
				t.Fatal("accepted key has no fingerprint")
			}
		})
	}

	t.Run("a block with two keys is refused", func(t *testing.T) {
		_, err := pgpmime.ParsePublicKey(concatBlock(t, good, newEntity(t, "Other", patient, 0)), patient, t0)
		if !errors.Is(err, pgpmime.ErrMalformedKey) {
			t.Fatalf("error = %v, want ErrMalformedKey", err)
		}
	})
	t.Run("key expiring later reports when", func(t *testing.T) {
		k, err := pgpmime.ParsePublicKey(armorPublic(t, expiring), patient, t0.Add(-45*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(-30 * time.Minute); !k.Expires.Equal(want) {
			t.Fatalf("Expires = %v, want %v", k.Expires, want)
		}
	})
}

// corrupt flips a character in the middle of the base64 body, which the
// CRC-24 checksum or the packet parser must catch.
func corrupt(armored string) string {
	lines := strings.Split(armored, "\n")
	i := len(lines) / 2
	b := []byte(lines[i])
	if b[3] == 'A' {
		b[3] = 'B'
	} else {
		b[3] = 'A'
	}
	lines[i] = string(b)
	return strings.Join(lines, "\n")
}

// concatBlock armors two keys in one block.
func concatBlock(t *testing.T, a, b *openpgp.Entity) []byte {
	t.Helper()
	var raw bytes.Buffer
	if err := a.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	if err := b.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	return armorBytes(t, openpgp.PublicKeyType, raw.Bytes())
}

func TestParseSigningKeyRules(t *testing.T) {
	t.Parallel()
	sender := newEntity(t, "Clinic", clinic, 0)
	locked := newEntity(t, "Clinic", clinic, 0)
	if err := locked.EncryptPrivateKeys([]byte("correct horse"), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		armored    []byte
		passphrase string
		address    string
		want       error
	}{
		{"unlocked private key is accepted", armorPrivate(t, sender), "", clinic, nil},
		{"protected key opens with its passphrase", armorPrivate(t, locked), "correct horse", clinic, nil},
		{"protected key with a wrong passphrase is refused", armorPrivate(t, locked), "wrong", clinic, pgpmime.ErrLockedPrivateKey},
		{"public key is refused as a signing key", armorPublic(t, sender), "", clinic, pgpmime.ErrNotPrivateKey},
		{"signing key for a different address is refused", armorPrivate(t, sender), "", "billing@clinic.example", pgpmime.ErrAddressMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := pgpmime.ParseSigningKey(tt.armored, []byte(tt.passphrase), tt.address, t0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseSigningKey error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	t.Parallel()
	rita := newEntity(t, "Rita", patient, 0)
	sender := newEntity(t, "Clinic", clinic, 0)
	to, err := pgpmime.ParsePublicKey(armorPublic(t, rita), patient, t0)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := pgpmime.ParseSigningKey(armorPrivate(t, sender), nil, clinic, t0)
	if err != nil {
		t.Fatal(err)
	}
	msg := message(t, clinic, patient, "Your lab results: HbA1c", 2000)
	for _, signed := range []bool{false, true} {
		name := "encrypted only"
		var s *pgpmime.SigningKey
		if signed {
			name, s = "signed and encrypted (RFC 3156 §6.2)", signer
		}
		t.Run(name, func(t *testing.T) {
			out, err := pgpmime.Encrypt(msg, []*pgpmime.PublicKey{to}, s, pgpmime.Options{Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			checkOuterHeader(t, out)
			_, armored := splitPGPMIME(t, out)
			md := readMessage(t, armored, openpgp.EntityList{rita, sender})
			body, err := io.ReadAll(md.UnverifiedBody)
			if err != nil {
				t.Fatal(err)
			}
			checkInnerEntity(t, body)
			if md.IsSigned != signed {
				t.Fatalf("IsSigned = %v, want %v", md.IsSigned, signed)
			}
			if signed && (md.SignatureError != nil || md.SignedBy == nil || md.SignedBy.Entity != sender) {
				t.Fatalf("signature: error %v, signed by %v", md.SignatureError, md.SignedBy)
			}
		})
	}
}

func readMessage(t *testing.T, armored []byte, keys openpgp.EntityList) *openpgp.MessageDetails {
	t.Helper()
	block := decodeArmor(t, armored)
	md, err := openpgp.ReadMessage(block, keys, nil, &packet.Config{Time: func() time.Time { return t0 }})
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	if !md.IsEncrypted {
		t.Fatal("message is not encrypted")
	}
	if md.LiteralData == nil || !md.LiteralData.IsBinary {
		t.Fatal("literal data is not binary")
	}
	return md
}

// checkOuterHeader: routing fields in clear, the neutral subject, and
// nothing of the content.
func checkOuterHeader(t *testing.T, out []byte) {
	t.Helper()
	head, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	h := string(head)
	for _, want := range []string{"From: ", "To: ", "Date: ", "Message-Id: <visit-1@clinic.example>", "Subject: Encrypted message", "MIME-Version: 1.0"} {
		if !strings.Contains(strings.ToLower(h), strings.ToLower(want)) {
			t.Errorf("outer header lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(string(out), "HbA1c") || strings.Contains(string(out), "Glucose") {
		t.Error("outer message shows the real subject or body")
	}
}

// checkInnerEntity: the decrypted entity keeps the real subject and body
// and carries the header-protection markers.
func checkInnerEntity(t *testing.T, body []byte) {
	t.Helper()
	s := string(body)
	for _, want := range []string{"Subject: Your lab results: HbA1c\r\n", "hp=cipher", "HP-Outer: Subject: Encrypted message\r\n", "Glucose 5.4"} {
		if !strings.Contains(s, want) {
			t.Errorf("inner entity lacks %q", want)
		}
	}
	if strings.Contains(s, "\n") && strings.Count(s, "\n") != strings.Count(s, "\r\n") {
		t.Error("inner entity has bare LF line ends")
	}
}

func TestEncryptRechecksExpiryAtSendTime(t *testing.T) {
	t.Parallel()
	rita := newEntity(t, "Rita", patient, 2*time.Hour)
	to, err := pgpmime.ParsePublicKey(armorPublic(t, rita), patient, t0)
	if err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return t0.Add(2 * time.Hour) }
	_, err = pgpmime.Encrypt(message(t, clinic, patient, "x", 10), []*pgpmime.PublicKey{to}, nil, pgpmime.Options{Now: later})
	if !errors.Is(err, pgpmime.ErrKeyExpired) {
		t.Fatalf("error = %v, want ErrKeyExpired", err)
	}
}

func TestEncryptWithoutRecipientsIsRefused(t *testing.T) {
	t.Parallel()
	_, err := pgpmime.Encrypt(message(t, clinic, patient, "x", 10), nil, nil, pgpmime.Options{})
	if !errors.Is(err, pgpmime.ErrNoRecipients) {
		t.Fatalf("error = %v, want ErrNoRecipients", err)
	}
}

func BenchmarkPGPEncrypt(b *testing.B) {
	rita := newEntity(b, "Rita", patient, 0)
	sender := newEntity(b, "Clinic", clinic, 0)
	to, err := pgpmime.ParsePublicKey(armorPublic(b, rita), patient, t0)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := pgpmime.ParseSigningKey(armorPrivate(b, sender), nil, clinic, t0)
	if err != nil {
		b.Fatal(err)
	}
	msg := message(b, clinic, patient, "Your lab results", 20_000)
	opts := pgpmime.Options{Now: func() time.Time { return t0 }}
	for _, bc := range []struct {
		name   string
		signer *pgpmime.SigningKey
	}{{"encrypt", nil}, {"sign+encrypt", signer}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := pgpmime.Encrypt(msg, []*pgpmime.PublicKey{to}, bc.signer, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

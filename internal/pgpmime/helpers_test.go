package pgpmime_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/internal/mail"
)

// t0 is the "now" of the tests; keys are created an hour earlier. It is
// the real time, since GnuPG checks signatures against the real clock.
var t0 = time.Now().UTC().Truncate(time.Second)

func keyConfig(lifetime time.Duration) *packet.Config {
	created := t0.Add(-time.Hour)
	return &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Time:            func() time.Time { return created },
		KeyLifetimeSecs: uint32(lifetime / time.Second),
	}
}

// newEntity makes an Ed25519 key with a Curve25519 encryption subkey for
// address, created an hour before t0.
func newEntity(t testing.TB, name, address string, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", address, keyConfig(lifetime))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func armorPublic(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func armorPrivate(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// message builds a realistic message with internal/mail, padded with
// text to about size bytes.
func message(t testing.TB, from, to, subject string, size int) []byte {
	t.Helper()
	f, err := mail.ParseAddress("from", from)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.ParseAddress("to", to)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	text.WriteString("Your test result is ready. Glucose 5.4 mmol/L.\n")
	for i := 0; text.Len() < size; i++ {
		fmt.Fprintf(&text, "Line %d of the visit summary, nothing unusual noted.\n", i)
	}
	raw, _, err := mail.Build(mail.Draft{
		From:      f,
		To:        []mail.Address{r},
		Subject:   subject,
		Text:      text.String(),
		MessageID: "visit-1@clinic.example",
		Date:      t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// splitPGPMIME checks the RFC 3156 §4 structure of out and returns its
// outer header and the armored OpenPGP message.
func splitPGPMIME(t testing.TB, out []byte) (netmail.Header, []byte) {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("outer message does not parse: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" {
		t.Fatalf("outer Content-Type = %q (%v), want multipart/encrypted; protocol=application/pgp-encrypted", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	version, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct := version.Header.Get("Content-Type"); ct != "application/pgp-encrypted" {
		t.Fatalf("first part Content-Type = %q, want application/pgp-encrypted", ct)
	}
	vb, _ := io.ReadAll(version)
	if !bytes.Contains(vb, []byte("Version: 1")) {
		t.Fatalf("version part = %q, want Version: 1", vb)
	}
	data, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct, _, _ := mime.ParseMediaType(data.Header.Get("Content-Type")); ct != "application/octet-stream" {
		t.Fatalf("second part Content-Type = %q, want application/octet-stream", ct)
	}
	armored, _ := io.ReadAll(data)
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("want exactly two parts, got more (%v)", err)
	}
	return m.Header, armored
}

func armorBytes(t testing.TB, blockType string, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, blockType, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func decodeArmor(t testing.TB, armored []byte) io.Reader {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatalf("armor: %v", err)
	}
	if block.Type != "PGP MESSAGE" {
		t.Fatalf("armor type = %q, want PGP MESSAGE", block.Type)
	}
	return block.Body
}

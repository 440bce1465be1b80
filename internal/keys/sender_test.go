package keys_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestSenderKeyIsSealedAndSigns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		acct := w.a.Principal.AccountID
		cert, key := w.ca.Issue(t, keystest.Leaf{Emails: []string{clinic}})
		keyPEM := keystest.KeyPEM(t, key)
		st, err := w.svc.UploadSender(ctx, w.a, keys.Upload{Address: clinic, Certificate: string(keystest.CertPEM(cert)), PrivateKey: string(keyPEM)})
		if err != nil {
			t.Fatal(err)
		}

		// What the database holds: the certificate, and a sealed blob
		// that contains neither the PEM nor the DER of the private key.
		var material string
		var sealed []byte
		if err := s.Reader().QueryRow(ctx, "SELECT material, private_sealed FROM mail_keys WHERE account_id = $1 AND id = $2",
			acct, st.Key.ID).Scan(&material, &sealed); err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(keyPEM)
		switch {
		case len(sealed) == 0:
			t.Fatal("no sealed private key stored")
		case bytes.Contains(sealed, keyPEM), bytes.Contains(sealed, block.Bytes), bytes.Contains(sealed, block.Bytes[len(block.Bytes)-64:]):
			t.Fatal("the stored blob contains the private key in the clear")
		case strings.Contains(material, "PRIVATE KEY"):
			t.Fatal("the private key is stored with the certificate")
		}

		signer, err := w.svc.SenderSMIME(ctx, acct, "NoReply@clinic.example")
		if err != nil || signer == nil || !bytes.Equal(signer.Cert.Raw, cert.Raw) {
			t.Fatalf("SenderSMIME = %v, %v; want the uploaded certificate", signer, err)
		}
		signed, err := smime.Sign(message(t, clinic, patient), signer, smime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		verifyWithOpenSSL(t, signed, w.ca)

		// The sealed key is bound to its row: copied onto another key's
		// row it does not open, and the lookup fails loudly rather than
		// signing with the wrong key.
		other, otherKey := w.ca.Issue(t, keystest.Leaf{Emails: []string{"billing@clinic.example"}, Key: keystest.RSAKey(1)})
		st2, err := w.svc.UploadSender(ctx, w.a, keys.Upload{Address: "billing@clinic.example", Certificate: string(keystest.CertPEM(other)),
			PrivateKey: string(keystest.KeyPEM(t, otherKey))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Writer().Exec(ctx, "UPDATE mail_keys SET private_sealed = $1 WHERE account_id = $2 AND id = $3", sealed, acct, st2.Key.ID); err != nil {
			t.Fatal(err)
		}
		if sg, err := w.svc.SenderSMIME(ctx, acct, "billing@clinic.example"); err == nil {
			t.Fatalf("a sealed key moved to another row opened: %v", sg)
		}
	})
}

func TestDomainSenderSignsForTheDomainAndAMailboxCertificateWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		acct := w.a.Principal.AccountID
		domainCert, domainKey := w.ca.Issue(t, keystest.Leaf{Emails: []string{clinic}})
		st, err := w.svc.UploadSender(ctx, w.a, keys.Upload{Domain: "Clinic.Example", Certificate: string(keystest.CertPEM(domainCert)),
			PrivateKey: string(keystest.KeyPEM(t, domainKey))})
		if err != nil {
			t.Fatal(err)
		}
		if st.Key.Domain != "clinic.example" || st.Key.Address != "" || st.Key.ValidatedAs != clinic {
			t.Fatalf("stored domain sender = %+v", st.Key)
		}
		sg, err := w.svc.SenderSMIME(ctx, acct, "appointments@clinic.example")
		if err != nil || sg == nil || !bytes.Equal(sg.Cert.Raw, domainCert.Raw) {
			t.Fatalf("SenderSMIME for an address of the domain = %v, %v; want the domain certificate", sg, err)
		}
		if sg, err := w.svc.SenderSMIME(ctx, acct, "someone@hospital.example"); sg != nil || err != nil {
			t.Fatalf("SenderSMIME for another domain = %v, %v; want nil, nil", sg, err)
		}

		mailbox, mailboxKey := w.ca.Issue(t, keystest.Leaf{Emails: []string{"appointments@clinic.example"}, Key: keystest.RSAKey(1)})
		if _, err := w.svc.UploadSender(ctx, w.a, keys.Upload{Address: "appointments@clinic.example", Certificate: string(keystest.CertPEM(mailbox)),
			PrivateKey: string(keystest.KeyPEM(t, mailboxKey))}); err != nil {
			t.Fatal(err)
		}
		sg, err = w.svc.SenderSMIME(ctx, acct, "appointments@clinic.example")
		if err != nil || sg == nil || !bytes.Equal(sg.Cert.Raw, mailbox.Raw) {
			t.Fatalf("SenderSMIME = %v, %v; want the mailbox's own certificate over the domain's", sg, err)
		}
		p, err := w.svc.List(ctx, acct, keys.SMIMESender, keys.Filter{Address: "clinic.example"})
		if err != nil || len(p.Keys) != 1 || p.Keys[0].ID != st.Key.ID {
			t.Fatalf("list filtered by domain = %+v, %v", p.Keys, err)
		}
	})
}

func message(t *testing.T, from, to string) []byte {
	t.Helper()
	f, err := mail.ParseAddress("from", from)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.ParseAddress("to", to)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := mail.Build(mail.Draft{From: f, To: []mail.Address{r}, Subject: "Your appointment",
		Text: "Your appointment is confirmed.\n", MessageID: "appt-1@clinic.example"})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// verifyWithOpenSSL checks a clear-signed message with openssl smime
// -verify against the test CA (skipped when openssl is missing).
func verifyWithOpenSSL(t *testing.T, signed []byte, ca *keystest.CA) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not installed: signature not checked by openssl")
		return
	}
	dir := t.TempDir()
	msg, caFile := filepath.Join(dir, "msg.eml"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(msg, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, keystest.CertPEM(ca.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "smime", "-verify", "-in", msg, "-CAfile", caFile, "-purpose", "smimesign", "-out", os.DevNull).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification successful") {
		t.Fatalf("openssl smime -verify: %v\n%s", err, out)
	}
}

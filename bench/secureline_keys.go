package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// lineKeys is the key material of one SecureLine cost run, made in
// process: an S/MIME test CA (the server's trust anchor,
// secureline.smime_trust_file), one RSA-2048 key that every recipient
// certificate certifies (key transport costs one RSA public-key
// operation whichever key it is, and making thousands of RSA keys would
// take minutes), a sender certificate and key, and an Ed25519/X25519
// OpenPGP key per PGP recipient. It keeps the private halves so the sink
// can open the sampled messages.
type lineKeys struct {
	ca        *x509.Certificate
	caKey     *ecdsa.PrivateKey
	caPEM     []byte
	rcptKey   *rsa.PrivateKey
	senderKey *rsa.PrivateKey
	serial    atomic.Int64

	mu    sync.Mutex
	pgp   map[string]*openpgp.Entity
	smime map[string]*x509.Certificate
}

func newLineKeys() (*lineKeys, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Sealpost bench S/MIME CA", Organization: []string{"Sealpost bench"}},
		NotBefore:    now.Add(-48 * time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	k := &lineKeys{ca: ca, caKey: caKey, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pgp: map[string]*openpgp.Entity{}, smime: map[string]*x509.Certificate{}}
	k.serial.Store(1)
	if k.rcptKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.senderKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	return k, nil
}

// issue makes an S/MIME certificate for address (RFC 8550 §4.4.2: the
// address in subjectAltName; emailProtection, as the CA/Browser Forum
// S/MIME Baseline Requirements have it).
func (k *lineKeys) issue(address string, usage x509.KeyUsage, key *rsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(k.serial.Add(1)),
		Subject:      pkix.Name{CommonName: address},
		NotBefore:    now.Add(-24 * time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage: usage, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		EmailAddresses: []string{address},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, k.ca, key.Public(), k.caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert, err
}

// smimeUpload is the POST /v1/keys/smime body for address.
func (k *lineKeys) smimeUpload(address string) (any, error) {
	certPEM, cert, err := k.issue(address, x509.KeyUsageKeyEncipherment|x509.KeyUsageDigitalSignature, k.rcptKey)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.smime[address] = cert
	k.mu.Unlock()
	return map[string]string{"address": address, "certificate": string(certPEM)}, nil
}

// senderUpload is the POST /v1/keys/smime-senders body for address.
func (k *lineKeys) senderUpload(address string) (any, error) {
	certPEM, _, err := k.issue(address, x509.KeyUsageDigitalSignature, k.senderKey)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.senderKey)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return map[string]string{"address": address, "certificate": string(certPEM), "private_key": string(keyPEM)}, nil
}

// pgpUpload makes an OpenPGP key for address and returns the POST
// /v1/keys/pgp body. Created an hour ago, so a clock a little behind
// the server's does not make it a key "from the future".
func (k *lineKeys) pgpUpload(address string) (any, error) {
	created := time.Now().Add(-time.Hour)
	e, err := openpgp.NewEntity("Bench Patient", "", address,
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created }})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.pgp[address] = e
	k.mu.Unlock()
	return map[string]string{"address": address, "public_key": b.String()}, nil
}

func (k *lineKeys) pgpEntity(address string) *openpgp.Entity {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pgp[address]
}

func (k *lineKeys) smimeRecipient(address string) (*x509.Certificate, any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.smime[address], k.rcptKey
}

func (k *lineKeys) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(k.ca)
	return p
}

// uploadKeys posts body(address) to path for every address through the
// keys API (as an administrator would), from clients concurrent
// clients; every upload must be answered 201.
func uploadKeys(ctx context.Context, p *apiPoster, path string, addrs []string, clients int, body func(string) (any, error), progress func(int)) error {
	var next, done atomic.Int64
	return forEachClient(clients, func() error {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(addrs) || ctx.Err() != nil {
				return ctx.Err()
			}
			b, err := body(addrs[i])
			if err != nil {
				return fmt.Errorf("make the key for %s: %w", addrs[i], err)
			}
			status, out, err := p.post(ctx, path, b)
			if err != nil || status != http.StatusCreated {
				return fmt.Errorf("POST %s: %d %.300s %v", path, status, out, err)
			}
			if progress != nil {
				progress(int(done.Add(1)))
			}
		}
	})
}

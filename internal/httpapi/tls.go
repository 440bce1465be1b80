package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the development certificate files DevCertificate keeps.
const (
	devCertName = "dev-tls-cert.pem"
	devKeyName  = "dev-tls-key.pem"
)

// devCertLifetime and devCertRenewal: the certificate lasts a year and is
// replaced when less than a month is left.
const (
	devCertLifetime = 365 * 24 * time.Hour
	devCertRenewal  = 30 * 24 * time.Hour
)

// TLSConfig loads a PEM certificate chain and key and returns a server
// configuration that refuses anything older than TLS 1.2 (RFC 8996
// deprecates 1.0 and 1.1).
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}

// DevCertificate returns the paths of a self-signed ECDSA P-256
// certificate for localhost, 127.0.0.1 and ::1 in dir, creating it (key
// mode 0600) on first use and reusing it afterwards, so browsers are
// asked to trust it once. It is replaced when it no longer loads, names
// other hosts, or nears expiry. For development only.
func DevCertificate(dir string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, devCertName)
	keyFile = filepath.Join(dir, devKeyName)
	if devCertUsable(certFile, keyFile, time.Now()) {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create directory for the development certificate %s: %w", dir, err)
	}
	certPEM, keyPEM, err := newDevCertificate(time.Now())
	if err != nil {
		return "", "", err
	}
	// Key first: a crash between the two leaves a certificate that no
	// longer matches its key, which the next call detects and replaces.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// devCertUsable reports whether an existing pair loads, matches, covers
// the development names and stays valid for a while.
func devCertUsable(certFile, keyFile string, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return false
		}
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if leaf.VerifyHostname(host) != nil {
			return false
		}
	}
	return now.After(leaf.NotBefore) && now.Add(devCertRenewal).Before(leaf.NotAfter)
}

// newDevCertificate makes a self-signed server certificate and its key,
// both PEM encoded.
func newDevCertificate(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate development key: %w", err)
	}
	// RFC 5280 §4.1.2.2: a positive serial of at most 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: "Sealpost development certificate", Organization: []string{"Sealpost (development)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devCertLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create development certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode development key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// writeFileAtomic writes data to a temporary file with mode perm in the
// same directory and renames it over name, so readers never see a partial
// file and the key is never, even briefly, readable by others.
func writeFileAtomic(name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600; widen only when asked.
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

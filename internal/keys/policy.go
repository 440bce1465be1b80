package keys

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/sealpost/sealpost/internal/smime"
)

// LoadPolicy reads the S/MIME trust anchors (a PEM bundle of
// certificates) and, when crlFile is set, certificate revocation lists
// (PEM "X509 CRL" blocks, or one DER list). An empty trustFile gives no
// anchors: every S/MIME certificate is then refused as untrusted.
func LoadPolicy(trustFile, crlFile string) (smime.Policy, error) {
	var p smime.Policy
	if trustFile != "" {
		data, err := os.ReadFile(trustFile)
		if err != nil {
			return p, fmt.Errorf("read S/MIME trust anchors: %w", err)
		}
		pool, n, err := parseAnchors(data)
		if err != nil {
			return p, fmt.Errorf("S/MIME trust anchors %s: %w", trustFile, err)
		}
		if n == 0 {
			return p, fmt.Errorf("S/MIME trust anchors %s: no certificate found", trustFile)
		}
		p.Roots = pool
	}
	if crlFile != "" {
		data, err := os.ReadFile(crlFile)
		if err != nil {
			return p, fmt.Errorf("read S/MIME CRLs: %w", err)
		}
		crls, err := parseCRLs(data)
		if err != nil {
			return p, fmt.Errorf("S/MIME CRLs %s: %w", crlFile, err)
		}
		p.CRLs = crls
	}
	return p, nil
}

func parseAnchors(data []byte) (*x509.CertPool, int, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("certificate %d does not parse", n+1)
		}
		pool.AddCert(c)
		n++
	}
	return pool, n, nil
}

func parseCRLs(data []byte) ([]*x509.RevocationList, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("not a PEM or DER CRL")
		}
		return []*x509.RevocationList{crl}, nil
	}
	var out []*x509.RevocationList
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL %d does not parse", len(out)+1)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CRL found")
	}
	return out, nil
}

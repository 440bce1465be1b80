package smime_test

import (
	"errors"
	"testing"

	"github.com/sealpost/sealpost/internal/smime"
)

// FuzzParseCertificates: arbitrary uploads never panic and fail only
// with ErrMalformedCert.
func FuzzParseCertificates(f *testing.F) {
	root := newCA(f, "Fuzz Root", nil)
	leaf, _ := root.issue(f, leafSpec{emails: []string{patient}})
	f.Add(certPEM(leaf, root.cert))
	f.Add(leaf.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := smime.ParseCertificates(data)
		if err != nil && !errors.Is(err, smime.ErrMalformedCert) {
			t.Fatalf("undocumented error %v", err)
		}
		if err == nil && c == nil {
			t.Fatal("no error and no certificate")
		}
	})
}

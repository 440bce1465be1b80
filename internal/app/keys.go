package app

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// newKeys builds the key management service with the S/MIME trust
// anchors and CRLs of secureline.smime_trust_file and smime_crl_file; a
// file that does not load stops the start with its key named.
func newKeys(cfg config.Config, s *store.Store, v *vault.Vault, log *audit.Log) (*keys.Service, error) {
	policy, err := keys.LoadPolicy(cfg.SecureLine.SMIMETrustFile, "")
	if err != nil {
		return nil, fmt.Errorf("secureline.smime_trust_file: %w", err)
	}
	crls, err := keys.LoadPolicy("", cfg.SecureLine.SMIMECRLFile)
	if err != nil {
		return nil, fmt.Errorf("secureline.smime_crl_file: %w", err)
	}
	policy.CRLs = crls.CRLs
	return keys.New(s, v, log, keys.Options{SMIME: policy}), nil
}

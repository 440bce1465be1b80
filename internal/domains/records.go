package domains

import "strings"

// Record is a DNS record the domain's owner should publish.
type Record struct {
	Type    string // TXT
	Name    string
	Value   string
	Purpose string
	// Required records gate verification; the others are advice.
	Required bool
}

// Records lists what to publish for d: the two DKIM keys (required), and
// suggestions for SPF (RFC 7208), DMARC (RFC 7489), MTA-STS (RFC 8461; the
// policy file itself is served from https://mta-sts.<domain>/) and TLS
// reporting (RFC 8460).
func (s *Service) Records(d Domain) []Record {
	spf := "v=spf1 mx ~all"
	if s.HeloName != "" && strings.Contains(s.HeloName, ".") {
		spf = "v=spf1 a:" + s.HeloName + " mx ~all"
	}
	id := d.CreatedAt.UTC().Format("20060102T150405")
	return []Record{
		{Type: "TXT", Name: d.RSASelector() + "._domainkey." + d.Name, Value: "v=DKIM1; k=rsa; p=" + d.RSAPublic,
			Purpose: "DKIM public key (RSA-2048)", Required: true},
		{Type: "TXT", Name: d.EdSelector() + "._domainkey." + d.Name, Value: "v=DKIM1; k=ed25519; p=" + d.EdPublic,
			Purpose: "DKIM public key (Ed25519, RFC 8463)", Required: true},
		{Type: "TXT", Name: d.Name, Value: spf, Purpose: "SPF: the hosts allowed to send for the domain (merge with an existing SPF record)"},
		{Type: "TXT", Name: "_dmarc." + d.Name, Value: "v=DMARC1; p=quarantine; adkim=s; aspf=r; rua=mailto:dmarc-reports@" + d.Name,
			Purpose: "DMARC policy suggestion"},
		{Type: "TXT", Name: "_mta-sts." + d.Name, Value: "v=STSv1; id=" + id,
			Purpose: "MTA-STS suggestion for inbound mail (publish the policy at https://mta-sts." + d.Name + "/.well-known/mta-sts.txt)"},
		{Type: "TXT", Name: "_smtp._tls." + d.Name, Value: "v=TLSRPTv1; rua=mailto:tls-reports@" + d.Name,
			Purpose: "TLS reporting (RFC 8460) suggestion"},
	}
}

package app

import (
	"context"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/dlpsettings"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/wkd"
)

// newSecureLine builds the encryption decision engine over the delivery
// engine's TLS probe (same routes, smarthost, trust anchors and MTA-STS
// as delivery), the recipients' keys, the DLP scanner and the accounts'
// DLP policies; preflight scans with each account's own DLP settings.
func newSecureLine(s *store.Store, log *audit.Log, engine *delivery.Engine, k *wkd.Finder, rules *policy.Engine,
	scanners *dlpsettings.Service) (*secureline.Service, error) {
	opts := secureline.Options{Audit: log, Scanner: scanners.Default(), Scanners: scanners, TLS: deliveryProber{engine}, Policy: policyVerdicts(rules)}
	if k != nil {
		opts.Keys = k
	}
	return secureline.New(s, opts), nil
}

// deliveryProber adapts delivery.Engine.ProbeTLS to secureline.TLSProber.
type deliveryProber struct{ e *delivery.Engine }

func (p deliveryProber) ProbeTLS(ctx context.Context, domain string) (secureline.TLSResult, error) {
	r, err := p.e.ProbeTLS(ctx, domain)
	return secureline.TLSResult{Verified: r.Verified, Detail: r.Detail}, err
}

// policyVerdicts adapts the DLP policy engine: the rules are loaded once
// per message and decided per recipient domain.
func policyVerdicts(rules *policy.Engine) secureline.PolicyFunc {
	if rules == nil {
		return nil
	}
	return func(ctx context.Context, accountID string, in secureline.PolicyInput) (map[string]secureline.PolicyVerdict, error) {
		p, err := rules.Load(ctx, accountID)
		if err != nil {
			return nil, err
		}
		res := dlp.Result{ContainsPHI: in.ContainsPHI}
		if in.Scan != nil {
			res = *in.Scan
			res.ContainsPHI = res.ContainsPHI || in.ContainsPHI
		}
		pin := policy.Input{AccountID: accountID, Sender: in.From, Kind: in.Kind, Tags: in.Tags, RecipientDomains: in.Domains, Result: res}
		out := make(map[string]secureline.PolicyVerdict, len(in.Domains))
		for _, d := range in.Domains {
			dec := p.Decide(pin, d)
			out[d] = secureline.PolicyVerdict{Action: string(dec.Action), MinEncryption: secureline.Minimum(dec.MinEncryption), RuleID: dec.RuleID}
		}
		return out, nil
	}
}

// wireAcceptance fills the send path's SecureLine step: the accounts' DLP
// scanners (and the default one), their rules and quarantine, and a
// decision service that knows the recipients' keys but never probes TLS
// nor waits on a Web Key Directory (acceptance must not wait on the
// network; delivery verifies TLS and falls back, a WKD miss is fetched in
// the background; see docs/secureline.md "At acceptance").
func wireAcceptance(accept *messages.SecureLine, s *store.Store, scanners *dlpsettings.Service, rules *policy.Engine,
	q *policy.QuarantineStore, k *wkd.Finder, p *portal.Service) error {
	var opts secureline.Options
	if k != nil {
		opts.Keys = k.CachedOnly()
	}
	accept.Scanner, accept.Scanners, accept.Policies, accept.Quarantine = scanners.Default(), scanners, rules, q
	accept.Decisions = secureline.New(s, opts)
	if p != nil {
		accept.Portal = p
	}
	return nil
}

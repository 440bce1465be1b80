package auth

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Credential schemes a policy can allow or refuse.
const (
	SchemeAPIKey = "api_key"
	SchemeBasic  = "basic"
	SchemeHMAC   = "hmac"
	SchemeBearer = "bearer"
	// SchemeConsole is a signed-in console session (cookie). The policy
	// cannot switch it off (users sign in with password and MFA), but its
	// address allow-list applies.
	SchemeConsole = "console"
)

// Policy is an account's authentication policy.
type Policy struct {
	AllowAPIKey bool
	AllowBasic  bool
	AllowHMAC   bool
	AllowBearer bool
	// IPAllowlist, when not empty, is the only source addresses whose
	// requests the account's credentials are accepted from.
	IPAllowlist []netip.Prefix
	// MFARequired forces TOTP on the account's users (web login, password
	// grant).
	MFARequired bool
	// TokenTTL is the lifetime of OAuth access tokens (1 to 60 minutes).
	TokenTTL time.Duration
	// AllowPasswordGrant turns on the OAuth password grant (RFC 6749
	// §4.3) for the account's first-party clients. RFC 9700 §2.4 advises
	// against the grant, so it is off by default.
	AllowPasswordGrant bool
}

// DefaultPolicy is the policy of an account that has not set one.
func DefaultPolicy() Policy {
	return Policy{AllowAPIKey: true, AllowBasic: true, AllowHMAC: true, AllowBearer: true, TokenTTL: 15 * time.Minute}
}

// Limits of Policy.TokenTTL.
const (
	MinTokenTTL = time.Minute
	MaxTokenTTL = time.Hour
)

// Validate checks the policy is coherent.
func (p Policy) Validate() error {
	if !p.AllowAPIKey && !p.AllowBasic && !p.AllowHMAC && !p.AllowBearer {
		return fmt.Errorf("at least one of api_key, basic, bearer and hmac must be allowed")
	}
	if p.TokenTTL < MinTokenTTL || p.TokenTTL > MaxTokenTTL {
		return fmt.Errorf("token_ttl_seconds must be between %d and %d", int(MinTokenTTL.Seconds()), int(MaxTokenTTL.Seconds()))
	}
	if len(p.IPAllowlist) > 100 {
		return fmt.Errorf("at most 100 ip_allowlist entries")
	}
	return nil
}

// Allows reports whether a request with scheme from addr is acceptable,
// and why not.
func (p Policy) Allows(scheme string, addr netip.Addr) (bool, string) {
	allowed := map[string]bool{SchemeAPIKey: p.AllowAPIKey, SchemeBasic: p.AllowBasic, SchemeHMAC: p.AllowHMAC, SchemeBearer: p.AllowBearer,
		SchemeConsole: true}
	if !allowed[scheme] {
		return false, scheme + " disabled by policy"
	}
	if len(p.IPAllowlist) == 0 {
		return true, ""
	}
	addr = addr.Unmap()
	if slices.ContainsFunc(p.IPAllowlist, func(pfx netip.Prefix) bool { return pfx.Contains(addr) }) {
		return true, ""
	}
	return false, "source address not in the allow-list"
}

// PolicyLookup returns an account's policy (DefaultPolicy when unset).
type PolicyLookup interface {
	AuthPolicy(ctx context.Context, accountID string) (Policy, error)
}

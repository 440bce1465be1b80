package account

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// ErrLockout: the policy would refuse the very credential changing it.
var ErrLockout = errors.New("account: the policy would lock out the caller")

// AuthPolicy implements auth.PolicyLookup.
func (s *Store) AuthPolicy(ctx context.Context, accountID string) (auth.Policy, error) {
	return s.authPolicy(ctx, s.db.Reader(), accountID)
}

func (s *Store) authPolicy(ctx context.Context, q store.Querier, accountID string) (auth.Policy, error) {
	p := auth.DefaultPolicy()
	var allowlist string
	var ttl int64
	err := q.QueryRow(ctx, `SELECT allow_api_key, allow_basic, allow_hmac, allow_bearer, ip_allowlist, mfa_required, token_ttl_seconds,
		allow_password_grant FROM account_auth_policy WHERE account_id = $1`, accountID).
		Scan(&p.AllowAPIKey, &p.AllowBasic, &p.AllowHMAC, &p.AllowBearer, &allowlist, &p.MFARequired, &ttl, &p.AllowPasswordGrant)
	if errors.Is(err, store.ErrNotFound) {
		return auth.DefaultPolicy(), nil
	}
	if err != nil {
		return auth.Policy{}, fmt.Errorf("auth policy: %w", err)
	}
	p.TokenTTL = time.Duration(ttl) * time.Second
	for _, f := range strings.Fields(allowlist) {
		pfx, err := netip.ParsePrefix(f)
		if err != nil {
			return auth.Policy{}, fmt.Errorf("auth policy: stored prefix %q: %w", f, err)
		}
		p.IPAllowlist = append(p.IPAllowlist, pfx)
	}
	return p, nil
}

// ParsePrefixes parses CIDR prefixes (a bare address is a /32 or /128),
// naming the first bad entry by position, never echoing it.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		s = strings.TrimSpace(s)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%w: ip_allowlist entry %d is not a CIDR prefix or address", ErrInvalid, i+1)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// Policy returns the actor's account's policy.
func (a *Admin) Policy(ctx context.Context, actor Actor) (auth.Policy, error) {
	return a.accounts.AuthPolicy(ctx, actor.Principal.AccountID)
}

// UpdatePolicy replaces the actor's account's policy, refusing one that
// would refuse the request making the change (scheme and source address),
// and audits the change.
func (a *Admin) UpdatePolicy(ctx context.Context, actor Actor, scheme string, p auth.Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, err.Error())
	}
	if actor.Principal.ActorKind != auth.ActorSystem {
		addr, err := netip.ParseAddr(actor.SourceIP)
		if err != nil {
			return fmt.Errorf("%w: unknown source address", ErrLockout)
		}
		if ok, why := p.Allows(scheme, addr); !ok {
			return fmt.Errorf("%w: %s", ErrLockout, why)
		}
	}
	prefixes := make([]string, len(p.IPAllowlist))
	for i, pfx := range p.IPAllowlist {
		prefixes[i] = pfx.String()
	}
	return a.db.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO account_auth_policy (account_id, allow_api_key, allow_basic, allow_hmac, allow_bearer,
			ip_allowlist, mfa_required, token_ttl_seconds, updated_at, allow_password_grant) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (account_id) DO UPDATE SET allow_api_key = excluded.allow_api_key, allow_basic = excluded.allow_basic,
			allow_hmac = excluded.allow_hmac, allow_bearer = excluded.allow_bearer, ip_allowlist = excluded.ip_allowlist,
			mfa_required = excluded.mfa_required, token_ttl_seconds = excluded.token_ttl_seconds, updated_at = excluded.updated_at,
			allow_password_grant = excluded.allow_password_grant`,
			actor.Principal.AccountID, p.AllowAPIKey, p.AllowBasic, p.AllowHMAC, p.AllowBearer, strings.Join(prefixes, " "),
			p.MFARequired, int64(p.TokenTTL/time.Second), store.Micros(time.Now()), p.AllowPasswordGrant)
		if err != nil {
			return fmt.Errorf("store auth policy: %w", err)
		}
		return a.audit(ctx, tx, actor, "auth_policy.updated", "account/"+actor.Principal.AccountID, map[string]string{
			"api_key": strconv.FormatBool(p.AllowAPIKey), "basic": strconv.FormatBool(p.AllowBasic),
			"hmac": strconv.FormatBool(p.AllowHMAC), "bearer": strconv.FormatBool(p.AllowBearer), "ip_allowlist_entries": strconv.Itoa(len(prefixes)),
			"mfa_required": strconv.FormatBool(p.MFARequired), "password_grant": strconv.FormatBool(p.AllowPasswordGrant), "token_ttl_seconds": strconv.FormatInt(int64(p.TokenTTL/time.Second), 10),
		})
	})
}

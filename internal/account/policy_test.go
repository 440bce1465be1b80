package account_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestAuthPolicyRoundTripAndLockoutGuard(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := twoTenants(t, s)
		accts, admin, c := f.accts, f.admin, f.a
		actor := f.ownerA
		actor.SourceIP = "10.1.2.3"
		if p, err := accts.AuthPolicy(ctx, c.AccountID); err != nil || !p.AllowBasic || p.TokenTTL != 15*time.Minute {
			t.Fatalf("default: %+v %v", p, err)
		}
		want := auth.Policy{AllowAPIKey: true, AllowHMAC: true, MFARequired: true, TokenTTL: 30 * time.Minute,
			IPAllowlist: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
		if err := admin.UpdatePolicy(ctx, actor, auth.SchemeAPIKey, want); err != nil {
			t.Fatal(err)
		}
		got, err := accts.AuthPolicy(ctx, c.AccountID)
		if err != nil || got.AllowBasic || !got.MFARequired || got.TokenTTL != want.TokenTTL || len(got.IPAllowlist) != 1 || got.IPAllowlist[0] != want.IPAllowlist[0] {
			t.Fatalf("round trip: %+v %v", got, err)
		}
		lockouts := []struct {
			scheme string
			p      auth.Policy
		}{
			{auth.SchemeBasic, want},
			{auth.SchemeAPIKey, auth.Policy{AllowAPIKey: true, TokenTTL: time.Hour, IPAllowlist: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		}
		for i, l := range lockouts {
			if err := admin.UpdatePolicy(ctx, actor, l.scheme, l.p); !errors.Is(err, account.ErrLockout) {
				t.Errorf("lockout %d: %v", i, err)
			}
		}
		// The host operator (CLI) is not locked out by addresses.
		system := account.Actor{Principal: auth.Principal{AccountID: c.AccountID, ActorKind: auth.ActorSystem, ActorID: "cli", Scopes: auth.AllScopes()}}
		if err := admin.UpdatePolicy(ctx, system, "", lockouts[1].p); err != nil {
			t.Fatalf("system update: %v", err)
		}
		if _, err := account.ParsePrefixes([]string{"10.0.0.0/8", "300.1.1.1"}); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("bad prefix: %v", err)
		}
	})
}

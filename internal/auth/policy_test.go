package auth_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
)

func TestPolicyAllows(t *testing.T) {
	t.Parallel()
	p := auth.Policy{AllowAPIKey: true, AllowHMAC: true, TokenTTL: 15 * time.Minute,
		IPAllowlist: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}}
	cases := []struct {
		name, scheme, addr string
		want               bool
	}{
		{"allowed scheme and address", auth.SchemeAPIKey, "10.1.2.3", true},
		{"IPv4-mapped IPv6 address", auth.SchemeHMAC, "::ffff:10.1.2.3", true},
		{"IPv6 in list", auth.SchemeAPIKey, "2001:db8::1", true},
		{"disabled scheme", auth.SchemeBasic, "10.1.2.3", false},
		{"address outside", auth.SchemeAPIKey, "10.2.0.1", false},
		{"unknown scheme", "kerberos", "10.1.2.3", false},
	}
	for _, c := range cases {
		if got, why := p.Allows(c.scheme, netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("%s: got %v (%s), want %v", c.name, got, why, c.want)
		}
	}
	if ok, _ := auth.DefaultPolicy().Allows(auth.SchemeBasic, netip.MustParseAddr("192.0.2.1")); !ok {
		t.Error("the default policy refuses Basic")
	}
	bad := []auth.Policy{
		{TokenTTL: 15 * time.Minute},
		{AllowAPIKey: true, TokenTTL: 30 * time.Second},
		{AllowAPIKey: true, TokenTTL: 2 * time.Hour},
	}
	for i, b := range bad {
		if b.Validate() == nil {
			t.Errorf("bad policy %d validated", i)
		}
	}
}

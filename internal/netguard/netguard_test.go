package netguard_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/sealpost/sealpost/internal/netguard"
)

func TestPublic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, addr string
		public     bool
	}{
		{"a public IPv4 address", "93.184.216.34", true},
		{"a public IPv6 address", "2606:2800:220:1:248:1893:25c8:1946", true},
		{"loopback", "127.0.0.1", false},
		{"loopback, not only .1", "127.0.0.2", false},
		{"IPv6 loopback", "::1", false},
		{"RFC 1918", "10.1.2.3", false},
		{"RFC 1918, 192.168", "192.168.0.10", false},
		{"cloud metadata (link-local)", "169.254.169.254", false},
		{"IPv6 link-local", "fe80::1", false},
		{"unique local IPv6", "fd00::1", false},
		{"carrier-grade NAT", "100.64.0.1", false},
		{"unspecified", "0.0.0.0", false},
		{"this network", "0.1.2.3", false},
		{"documentation", "203.0.113.7", false},
		{"broadcast", "255.255.255.255", false},
		{"multicast", "224.0.0.1", false},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1", false},
		{"NAT64 of a private address", "64:ff9b::a00:1", false},
		{"6to4", "2002:a00:1::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := netguard.Public(netip.MustParseAddr(tt.addr)); got != tt.public {
				t.Errorf("Public(%s) = %v, want %v", tt.addr, got, tt.public)
			}
		})
	}
}

func TestControlRefusesWhatIsNotPublic(t *testing.T) {
	t.Parallel()
	if err := netguard.Control("tcp4", "127.0.0.1:443", nil); !errors.Is(err, netguard.ErrDestination) {
		t.Errorf("loopback: %v", err)
	}
	if err := netguard.Control("tcp6", "[2606:2800:220:1:248:1893:25c8:1946]:443", nil); err != nil {
		t.Errorf("public: %v", err)
	}
	if err := netguard.Control("tcp", "not an address", nil); !errors.Is(err, netguard.ErrDestination) {
		t.Errorf("garbage: %v", err)
	}
}

// Package netguard decides which network addresses outbound fetches made
// on behalf of remote parties may reach: a host name chosen by someone
// else (a recipient's domain, a customer's URL) must not lead the node to
// its own loopback, the private network behind it or a cloud metadata
// service (server-side request forgery). It holds no state and does no
// I/O beyond what the caller's dialer does.
package netguard

import (
	"errors"
	"net/netip"
	"syscall"
)

// ErrDestination: the address dialled is not a public one.
var ErrDestination = errors.New("netguard: destination address not allowed (private, loopback or link-local)")

// nonPublic are ranges Public refuses beyond what netip classifies: RFC
// 6598 shared address space (carrier-grade NAT), RFC 6890 special purpose
// blocks, benchmarking (RFC 2544), documentation (RFC 5737, RFC 3849),
// the reserved 240/4, and the NAT64 (RFC 6052, RFC 8215) and 6to4 (RFC
// 3056) prefixes, which embed arbitrary IPv4 addresses.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// Public reports whether a is a globally routable unicast address.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || !a.IsGlobalUnicast() {
		return false
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Control is a net.Dialer Control function that refuses every address
// that is not Public with ErrDestination. It sees the address actually
// dialled, after name resolution, so a host name that resolves (or
// rebinds) to a private address is refused too.
func Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !Public(ap.Addr()) {
		return ErrDestination
	}
	return nil
}

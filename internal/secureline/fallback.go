package secureline

// Fallback says what becomes of a recipient whose delivery attempt found
// the MX unable to do verified TLS (tlsFailed: no STARTTLS, a certificate
// that does not verify for the host name, a failed handshake), given the
// method decided at acceptance. It is for the delivery engine, which
// calls it before it would otherwise send.
//
// The rule: a recipient decided for verified TLS never goes out in clear
// text or over unverified TLS; it goes to the portal instead, except
// under tls_exclusive, which never falls back and defers (and, at the end
// of the recipient's lifetime, bounces). End-to-end methods and the
// portal do not depend on the transport and stay; opportunistic TLS
// accepts what the server offers (RFC 7435) and stays.
func Fallback(current Method, tlsFailed bool, mode Mode) (Method, string) {
	if !tlsFailed || current != MethodTLS {
		return current, ""
	}
	if mode == ModeTLSExclusive {
		return MethodDefer, "the recipient's server no longer offers verified TLS and the account is TLS-exclusive: deferred, never sent otherwise"
	}
	return MethodPortal, "the recipient's server no longer offers verified TLS: sent through the portal rather than in clear text"
}

// Package wkd discovers recipients' OpenPGP keys in their domain's Web
// Key Directory (draft-koch-openpgp-webkey-service, section 3.1: the
// advanced method at openpgpkey.<domain>, then the direct method at
// <domain>) over verified HTTPS, keeps what it found per account in the
// store (table wkd_keys), and offers Finder, which answers the send
// path's key lookups with the uploaded keys first and the directory only
// for accounts that enabled it (SecureLine setting wkd_enabled).
//
// A key from a directory is used only when it validates for the address
// (package pgpmime). A directory that fails or has no usable key means
// "no PGP key": it never fails a send, and the decision falls to TLS or
// the portal. It does not store uploaded keys (package keys) or decide
// methods (package secureline).
package wkd

import (
	"errors"
	"time"
)

// Defaults of the client and the cache.
const (
	// DefaultTimeout bounds one lookup, both methods together: the
	// lookup happens while a message is accepted.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxKeyBytes bounds a directory's answer. A key with many
	// third-party signatures can be large; more is refused unread.
	DefaultMaxKeyBytes = 256 << 10
	// DefaultKeyTTL is how long a key found is used before the directory
	// is asked again (a key that expires or is revoked meanwhile is
	// refused at every use anyway).
	DefaultKeyTTL = 24 * time.Hour
	// DefaultNoKeyTTL is how long "no usable key" is remembered.
	DefaultNoKeyTTL = time.Hour
	// DefaultErrorTTL is how long a directory that could not be asked is
	// left alone, so that a flapping server is not asked on every
	// message, nor its absence remembered for long.
	DefaultErrorTTL = 5 * time.Minute
)

// Errors callers branch on. A lookup error is one of these and never
// carries the address or the URL (which holds the local part).
var (
	// ErrNoKey: the directory answered, with no key usable for the
	// address (not found, or a key that does not validate for it).
	ErrNoKey = errors.New("wkd: no usable key")
	// ErrUnavailable: the directory could not be asked or gave no
	// answer (DNS, connection, TLS, timeout, a server error).
	ErrUnavailable = errors.New("wkd: directory unavailable")
)

// LookupError is a failed lookup: Reason says why in words safe to log
// (never the address, the URL or key material).
type LookupError struct {
	// NoKey: the directory answered without a usable key (ErrNoKey);
	// otherwise it could not be asked (ErrUnavailable).
	NoKey  bool
	Reason string
	// Err is the cause, for errors.Is (netguard.ErrDestination, a
	// pgpmime error, a context error). Its text may hold the URL: do not
	// log it.
	Err error
}

func (e *LookupError) Error() string { return "wkd: " + e.Reason }

// Unwrap gives ErrNoKey or ErrUnavailable, and the cause.
func (e *LookupError) Unwrap() []error {
	kind := ErrUnavailable
	if e.NoKey {
		kind = ErrNoKey
	}
	if e.Err == nil {
		return []error{kind}
	}
	return []error{kind, e.Err}
}

func noKey(reason string, cause error) error {
	return &LookupError{NoKey: true, Reason: reason, Err: cause}
}

func unavailable(reason string, cause error) error {
	return &LookupError{Reason: reason, Err: cause}
}

// Package keys is the key management behind /v1/keys: it stores, per
// account, recipients' OpenPGP public keys and S/MIME certificates, and
// senders' S/MIME certificates and OpenPGP keys with their private keys
// sealed by the vault, and answers the send path's lookups (RecipientPGP,
// RecipientSMIME, SenderSMIME, SenderPGP). Every upload is validated by package
// pgpmime or smime, and every lookup validates again at the time of the
// lookup, so a key that expired, or a certificate whose CA was revoked
// or untrusted, after upload is never returned. It does not decide who
// gets which encryption (package secureline) and holds no HTTP.
package keys

import (
	"errors"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Kind is what a stored key is for.
type Kind string

// Kinds of stored key.
const (
	// PGP is a recipient's OpenPGP public key (encryption to them).
	PGP Kind = "pgp"
	// SMIME is a recipient's S/MIME certificate (encryption to them).
	SMIME Kind = "smime"
	// SMIMESender is a sender's S/MIME certificate and private key
	// (signing as them), for one address or a whole domain.
	SMIMESender Kind = "smime_sender"
	// PGPSender is a sender's OpenPGP private key, stored unlocked and
	// sealed (signing as them, RFC 3156 §6.2), for one address or a
	// whole domain.
	PGPSender Kind = "pgp_sender"
)

// sender reports whether keys of the kind sign for a sender, and so may
// be stored for a whole domain.
func (k Kind) sender() bool { return k == SMIMESender || k == PGPSender }

// Limits on uploads.
const (
	// MaxMaterialBytes bounds an armored key, a PEM chain or a PEM
	// private key. Keys with many third-party signatures can be large.
	MaxMaterialBytes = 256 << 10
	// MaxPerAddress bounds the keys of one kind for one address: a
	// lookup validates each candidate, so the cost must stay bounded.
	MaxPerAddress = 10
	// MaxChain bounds the certificates of one uploaded chain.
	MaxChain = 8
	// MaxPassphraseBytes bounds the passphrase of a protected OpenPGP
	// private key.
	MaxPassphraseBytes = 1024
)

// Errors callers branch on.
var (
	// ErrTooMany: the address already has MaxPerAddress keys of the kind.
	ErrTooMany = errors.New("keys: too many keys for the address")
	// ErrConcurrent: the same key was being uploaded at the same time.
	ErrConcurrent = errors.New("keys: concurrent upload of the same key")
	// ErrBadCursor: a list cursor that this package did not issue.
	ErrBadCursor = errors.New("keys: invalid cursor")
)

// Cause is why an uploaded key or certificate was refused; each has its
// own problem type in the HTTP API.
type Cause string

// Causes of refusal.
const (
	CauseMalformed       Cause = "malformed"
	CauseExpired         Cause = "expired"
	CauseRevoked         Cause = "revoked"
	CauseWrongUsage      Cause = "wrong_usage"
	CauseAddressMismatch Cause = "address_mismatch"
	CauseUntrusted       Cause = "untrusted"
	CauseWeakKey         Cause = "weak_key"
	CauseKeyMismatch     Cause = "key_mismatch"
	// CauseLocked: a protected private key that the passphrase (or its
	// absence) does not open.
	CauseLocked Cause = "locked"
)

// ValidationError refuses an upload: the request field, the cause, and
// a message naming the rule. It never holds key material or addresses.
type ValidationError struct {
	Field   string
	Cause   Cause
	Message string
	// Err is the pgpmime or smime error behind it, if any.
	Err error
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Unwrap gives access to the library error.
func (e *ValidationError) Unwrap() error { return e.Err }

// FieldError is a request field that is missing or has the wrong form
// (not about the key itself).
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Key is a stored key as the API lists it: never a private key.
type Key struct {
	ID   string
	Kind Kind
	// Address is the lower-cased address (IDN domain as A-labels) the
	// key is for; Domain is set instead for a domain-wide sender key.
	Address string
	Domain  string
	// ValidatedAs is the address the key or certificate holds and was
	// validated for (for a domain sender, the certificate's or the PGP
	// key's user id address in that domain).
	ValidatedAs string
	Fingerprint string
	// ExpiresAt is when the key or certificate stops being valid; zero
	// for a PGP key that does not expire.
	ExpiresAt time.Time
	// Status is "valid" when the key validates now, else the Cause that
	// refuses it now (an expired key stays listed until deleted).
	Status string
	// S/MIME only: the leaf's subject and issuer (RFC 4514 strings),
	// serial number (hex) and start of validity.
	Subject, Issuer, Serial string
	NotBefore               time.Time
	CreatedAt, UpdatedAt    time.Time
	CreatedBy               Actor
}

// Actor is who uploaded a key.
type Actor struct{ Kind, ID string }

// Upload is one key to store. PublicKey is set for PGP; Certificate for
// SMIME and SMIMESender; PrivateKey for SMIMESender (PEM, PKCS #8, or
// PKCS #1 or SEC 1) and PGPSender (an armored OpenPGP private key, with
// Passphrase when it is protected). Address is required, except that a
// sender may give Domain instead to sign for every address of the domain.
type Upload struct {
	Address     string
	Domain      string
	PublicKey   string
	Certificate string
	PrivateKey  string
	// Passphrase unlocks a protected PGPSender key once, at upload; it
	// is never stored.
	Passphrase string
}

// Stored is the result of an upload: the key, and whether it replaced
// one with the same fingerprint (a re-upload, e.g. after its expiry was
// extended) instead of adding one.
type Stored struct {
	Key      Key
	Replaced bool
}

// Filter selects a page of List.
type Filter struct {
	// Address, when set, lists only that address's (or domain's) keys.
	Address string
	// Limit is the page size (default 50, at most 500).
	Limit  int
	Cursor string
}

// Page is one page of keys, oldest first.
type Page struct {
	Keys       []Key
	NextCursor string
}

// Options tune a Service. The zero value validates S/MIME against no
// trust anchors (every certificate is untrusted) and uses the wall clock.
type Options struct {
	// SMIME is what certificates are validated against: the configured
	// trust anchors and CRLs.
	SMIME smime.Policy
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service stores and looks up keys. Safe for concurrent use.
type Service struct {
	db    *store.Store
	vault *vault.Vault
	log   *audit.Log
	opts  Options
}

// New returns the service over db; v seals sender private keys; log
// records uploads and deletions.
func New(db *store.Store, v *vault.Vault, log *audit.Log, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{db: db, vault: v, log: log, opts: opts}
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

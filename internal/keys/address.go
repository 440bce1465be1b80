package keys

import (
	"errors"
	"strings"

	"golang.org/x/net/idna"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/smime"
)

// normalizeAddress returns the lookup form of a bare mailbox: lower
// case, the domain as IDNA A-labels (as package mail writes it). Local
// parts compare case-insensitively here, as pgpmime and smime compare
// them and as mailbox providers treat them.
func normalizeAddress(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(field, s)
	if err != nil {
		var fe *mail.FieldError
		if errors.As(err, &fe) {
			return "", &FieldError{Field: field, Message: fe.Message}
		}
		return "", &FieldError{Field: field, Message: "must be an address such as name@example.org"}
	}
	if a.Name != "" || strings.ContainsAny(s, "<>") {
		return "", &FieldError{Field: field, Message: "must be a bare address, without a display name"}
	}
	return strings.ToLower(a.Addr()), nil
}

// normalizeDomain returns a domain name in lower-case A-labels.
func normalizeDomain(field, s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" || strings.ContainsAny(s, "@<> ") {
		return "", &FieldError{Field: field, Message: "must be a domain name such as clinic.example.org"}
	}
	a, err := mail.ParseAddress(field, "postmaster@"+s)
	if err != nil {
		return "", &FieldError{Field: field, Message: "must be a domain name such as clinic.example.org"}
	}
	return a.Domain, nil
}

// forms are the spellings of a normalized address a key or certificate
// may hold: as normalized, and with the domain in Unicode (U-labels) when
// it is internationalized.
func forms(addr string) []string {
	out := []string{addr}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return out
	}
	if u, err := idna.Lookup.ToUnicode(addr[at+1:]); err == nil && u != addr[at+1:] {
		out = append(out, addr[:at+1]+u)
	}
	return out
}

// domainOf returns the normalized domain of a normalized address.
func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// refusal turns a pgpmime or smime validation error into a
// ValidationError for field; other errors pass unchanged.
func refusal(field string, err error) error {
	c, ok := causeOf(err)
	if !ok {
		return err
	}
	msg := err.Error()
	for _, p := range []string{"pgpmime: ", "smime: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return &ValidationError{Field: field, Cause: c, Message: msg, Err: err}
}

// causeOf classifies the libraries' validation errors.
func causeOf(err error) (Cause, bool) {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		return ve.Cause, true
	case errors.Is(err, pgpmime.ErrMalformedKey), errors.Is(err, pgpmime.ErrNotPublicKey),
		errors.Is(err, pgpmime.ErrNotPrivateKey), errors.Is(err, smime.ErrMalformedCert):
		return CauseMalformed, true
	case errors.Is(err, pgpmime.ErrKeyExpired), errors.Is(err, smime.ErrCertExpired):
		return CauseExpired, true
	case errors.Is(err, pgpmime.ErrKeyRevoked), errors.Is(err, smime.ErrRevoked):
		return CauseRevoked, true
	case errors.Is(err, pgpmime.ErrNoEncryptionKey), errors.Is(err, pgpmime.ErrNoSigningKey),
		errors.Is(err, smime.ErrKeyUsage), errors.Is(err, smime.ErrNoEmailProtection):
		return CauseWrongUsage, true
	case errors.Is(err, pgpmime.ErrAddressMismatch), errors.Is(err, smime.ErrAddressMismatch):
		return CauseAddressMismatch, true
	case errors.Is(err, smime.ErrUntrusted):
		return CauseUntrusted, true
	case errors.Is(err, pgpmime.ErrWeakKey), errors.Is(err, smime.ErrUnsupportedKey):
		return CauseWeakKey, true
	case errors.Is(err, smime.ErrKeyMismatch), errors.Is(err, pgpmime.ErrKeyPairMismatch):
		return CauseKeyMismatch, true
	case errors.Is(err, pgpmime.ErrLockedPrivateKey):
		return CauseLocked, true
	}
	return "", false
}

// validateForms runs validate for each spelling of addr and returns the
// spelling that passed. When none passes, the error of the first
// spelling is returned, unless that is an address mismatch and another
// spelling got further.
func validateForms(addr string, validate func(form string) error) (string, error) {
	var first error
	for _, f := range forms(addr) {
		err := validate(f)
		if err == nil {
			return f, nil
		}
		if first == nil || (isMismatch(first) && !isMismatch(err)) {
			first = err
		}
	}
	return "", first
}

func isMismatch(err error) bool {
	return errors.Is(err, pgpmime.ErrAddressMismatch) || errors.Is(err, smime.ErrAddressMismatch)
}

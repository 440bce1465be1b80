package auth

import "fmt"

// RefusedClient describes a refused credential whose client id exists, so
// the refusal can be audited in the owning account's chain. It wraps
// ErrBadCredentials and never carries the presented secret.
type RefusedClient struct {
	AccountID string
	ClientID  string
	Reason    string // "wrong secret", "revoked", "account inactive"
}

func (e *RefusedClient) Error() string {
	return fmt.Sprintf("%v: client %s: %s", ErrBadCredentials, e.ClientID, e.Reason)
}

func (e *RefusedClient) Unwrap() error { return ErrBadCredentials }

package oauth

import (
	"context"
	"errors"

	"github.com/ory/fosite"

	"github.com/sealpost/sealpost/internal/login"
)

// The password grant (RFC 6749 §4.3) and why it is fenced in: RFC 9700
// §2.4 says it MUST NOT be used, because the client sees the user's
// password and the grant cannot carry phishing-resistant authentication.
// Integrators still ask for it, so Sealpost offers it only when the
// account's policy turns it on, only to clients the account marked
// first-party, with the same guessing limits as the console (per-user
// lockout, per-address throttle; §4.3.2 asks for protection against
// brute force), and with the user's second factor as an `otp` form
// parameter when the user has one.

// channel names the password grant in login audit events.
const channel = "password_grant"

// attempt carries what fosite's Authenticate(ctx, username, password)
// does not: the client's account, the otp parameter and the source, and
// brings back why a login failed so the answer can say what to do.
type attempt struct {
	accountID string
	otp       string
	sourceIP  string
	requestID string
	// set by Authenticate
	mfa          bool
	otpMissing   bool
	mfaMustEnrol bool
}

type attemptKey struct{}

// explain turns a refused password grant into the answer the client
// gets: invalid_grant always, with a hint only where the password was
// right and the next step is the user's (send a code, enrol first).
func (a *attempt) explain(err error) error {
	switch {
	case a.otpMissing:
		return fosite.ErrInvalidGrant.WithHint("The user has two-factor authentication: send the current code in the otp parameter.")
	case a.mfaMustEnrol:
		return fosite.ErrInvalidGrant.WithHint("The account requires two-factor authentication: the user must enrol in the console first.")
	}
	return err
}

// Authenticate implements fosite's ResourceOwnerPasswordCredentialsGrantStorage:
// email and password, then the otp parameter for users with MFA. Any
// refusal is fosite.ErrNotFound, which fosite answers invalid_grant.
func (s *storage) Authenticate(ctx context.Context, email, password string) (string, error) {
	att, ok := ctx.Value(attemptKey{}).(*attempt)
	if !ok || s.logins == nil || att.accountID == "" {
		return "", fosite.ErrNotFound
	}
	u, err := s.logins.Password(ctx, login.Attempt{AccountID: att.accountID, Email: email, Password: password,
		Channel: channel, SourceIP: att.sourceIP, RequestID: att.requestID})
	if errors.Is(err, login.ErrFailed) {
		return "", fosite.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	att.mfa = u.MFAEnrolled
	if !u.MFAEnrolled {
		if p, err := s.policies.AuthPolicy(ctx, u.AccountID); err != nil || p.MFARequired {
			att.mfaMustEnrol = true
			return "", fosite.ErrNotFound
		}
		return u.ID, nil
	}
	if att.otp == "" {
		att.otpMissing = true
		return "", fosite.ErrNotFound
	}
	if err := s.logins.SecondFactor(ctx, u, att.otp, channel, att.sourceIP, att.requestID); err != nil {
		if errors.Is(err, login.ErrBadCode) {
			return "", fosite.ErrNotFound
		}
		return "", err
	}
	return u.ID, nil
}

// Package bounce handles what remote systems report after they accepted
// a message: delivery status notifications (RFC 3464) and abuse feedback
// reports (ARF, RFC 5965). Every delivered message carries a signed
// return path, b+<token>@<bounce domain>, whose token names the message
// (and the recipient, when the SMTP transaction carried one) under a
// truncated HMAC-SHA256; the package's SMTP listener accepts mail only
// for such addresses, parses the report, and moves recipients to
// bounced, records delays and complaints, and suppresses bad or
// complaining addresses, each exactly once.
//
// It does not send mail (package delivery does, asking Signer for the
// envelope sender) nor serve the suppression list (package messages).
package bounce

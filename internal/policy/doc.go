// Package policy owns an account's DLP policy: an ordered list of rules
// over what the DLP scanner found (package dlp), the sender, the
// recipient's domain, the message's tags and kind, each with one action
// (allow, require encryption, force the portal, quarantine for review,
// block). Evaluation is first-match, like a firewall: the first enabled
// rule whose conditions all hold decides; when none does, the account
// default applies, which never lets PHI leave in clear text.
//
// The package also keeps the quarantine's review state (pending,
// released, rejected) and answers dry runs that explain a decision
// without storing or sending anything. It does not hold message content,
// choose the encryption method (package secureline turns a Decision's
// MinEncryption into a method per recipient) or deliver anything: the
// send path asks for a Decision and acts on it, and implements Releaser
// to resume or drop a quarantined message.
package policy

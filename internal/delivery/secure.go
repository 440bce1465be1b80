package delivery

// SecureLine at delivery: the engine carries out, per recipient, the
// encryption method decided when the message was accepted
// (message_recipients.enc_method, see docs/secureline.md):
//
//   - pgp, smime: the message is encrypted to the recipient's key, looked
//     up now, before DKIM signing (the signatures cover what is sent); a
//     key that is gone or no longer valid sends the recipient to the
//     portal, never in clear text;
//   - tls: only a connection whose TLS verified for the host name carries
//     it; when none can be had, secureline.Fallback decides: the portal,
//     or under tls_exclusive a deferral;
//   - tls_opportunistic, notice (the portal's own notices) and "" (no
//     decision): the TLS policy alone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
)

// Keys finds recipients' keys and senders' S/MIME certificates and PGP
// signing keys, valid now (keys.Service). Each returns nil, nil when
// there is none; errors are faults.
type Keys interface {
	RecipientPGP(ctx context.Context, accountID, address string) (*pgpmime.PublicKey, error)
	RecipientSMIME(ctx context.Context, accountID, address string) (*smime.Recipient, error)
	SenderSMIME(ctx context.Context, accountID, address string) (*smime.Signer, error)
	SenderPGP(ctx context.Context, accountID, address string) (*pgpmime.SigningKey, error)
}

// Portal takes the recipients delivery sends to the portal instead
// (portal.Service).
type Portal interface {
	// Enabled reports whether the portal takes messages (a public URL
	// is configured).
	Enabled() bool
	// DepositTx stores a portal copy in the caller's transaction.
	DepositTx(ctx context.Context, tx store.Tx, d portal.Deposit) (portal.Deposited, error)
}

// Modes returns accounts' SecureLine settings (secureline.Service); the
// engine caches the mode for modeTTL.
type Modes interface {
	Settings(ctx context.Context, accountID string) (secureline.Settings, error)
}

// Methods as stored in message_recipients.enc_method.
const (
	methodTLS   = string(secureline.MethodTLS)
	methodPGP   = string(secureline.MethodPGP)
	methodSMIME = string(secureline.MethodSMIME)
)

// viaPortal labels deliveries to the portal in the metrics and is their
// remote host.
const viaPortal = "portal"

// groupMethod is the transport requirement a recipient's method puts on
// its group: tls_opportunistic and the portal's notices (which carry no
// PHI, see secureline.MethodNotice) ask nothing more than no decision
// does.
func groupMethod(m string) string {
	switch secureline.Method(m) {
	case secureline.MethodOpportunisticTLS, secureline.MethodNotice:
		return ""
	}
	return m
}

// protect carries out the group's method on m before it is signed:
// pgp and smime encrypt it (encrypt); a recipient decided for the portal
// (acceptance deposits those, so one here was left over) is deposited
// now; a method delivery does not know is never sent, only deferred.
// With done, out are the recipients' outcomes and nothing is sent.
func (e *Engine) protect(ctx context.Context, g *group, m *message) (out []outcome, done bool) {
	switch g.method {
	case "", methodTLS:
		return nil, false
	case methodPGP, methodSMIME:
		return e.encrypt(ctx, g, m)
	case string(secureline.MethodPortal):
		return e.toPortal(ctx, g, m, "the recipient was decided for the portal", "decided_portal"), true
	}
	return e.outcomes(g.rcpts, stateDeferred, reply{}, "unknown encryption method "+strconv.Quote(sanitizeReply(g.method))+
		": not sent", "", nil), true
}

// encrypt replaces m.raw with the message encrypted to the group's one
// recipient. When that cannot be done it returns the recipient's
// outcomes and done: the portal (or a deferral) for a key that is gone or
// fails, a deferral for a fault looking it up.
func (e *Engine) encrypt(ctx context.Context, g *group, m *message) (out []outcome, done bool) {
	c := g.rcpts[0]
	var enc []byte
	var missing string
	var err error
	switch g.method {
	case methodPGP:
		enc, missing, err = e.encryptPGP(ctx, c, m)
	case methodSMIME:
		enc, missing, err = e.encryptSMIME(ctx, c, m)
	}
	switch {
	case err != nil:
		e.opts.Logger.Warn("key lookup failed", "account", c.AccountID, "message", c.MessageID, "error", err)
		return e.outcomes(g.rcpts, stateDeferred, reply{}, "cannot look up "+errText(err), "", nil), true
	case missing != "":
		reason := "key_unavailable"
		if missing != noKey(g.method) {
			reason = "encrypt_failed"
		}
		return e.toPortal(ctx, g, m, missing, reason), true
	}
	m.raw = enc
	return nil, false
}

func noKey(method string) string {
	if method == methodPGP {
		return "the recipient's PGP key is no longer on file or no longer valid"
	}
	return "the recipient's S/MIME certificate is no longer on file or no longer valid"
}

// encryptPGP encrypts m.raw to the recipient's OpenPGP key (PGP/MIME, RFC
// 3156 §4), signed with the sender's PGP key when there is one, in the
// combined signed-and-encrypted form of RFC 3156 §6.2. missing says why
// it cannot be, without an error.
func (e *Engine) encryptPGP(ctx context.Context, c claimed, m *message) (enc []byte, missing string, err error) {
	var key *pgpmime.PublicKey
	var signer *pgpmime.SigningKey
	if e.opts.Keys != nil {
		if key, err = e.opts.Keys.RecipientPGP(ctx, c.AccountID, c.Address); err != nil {
			return nil, "", fmt.Errorf("the recipient's key: %w", err)
		}
		if key != nil {
			if signer, err = e.opts.Keys.SenderPGP(ctx, c.AccountID, m.from); err != nil {
				return nil, "", fmt.Errorf("the sender's signing key: %w", err)
			}
		}
	}
	if key == nil {
		return nil, noKey(methodPGP), nil
	}
	// pgpmime checks the key again at this instant (expiry, revocation).
	enc, err = pgpmime.Encrypt(m.raw, []*pgpmime.PublicKey{key}, signer, pgpmime.Options{Now: e.opts.Now})
	if err != nil {
		return nil, "encryption to the recipient's PGP key failed: " + errText(err), nil
	}
	return enc, "", nil
}

// encryptSMIME encrypts m.raw to the recipient's certificate (RFC 8551
// §3.3), signed first with the sender's certificate when there is one
// (§3.6, sign then encrypt).
func (e *Engine) encryptSMIME(ctx context.Context, c claimed, m *message) (enc []byte, missing string, err error) {
	var cert *smime.Recipient
	var signer *smime.Signer
	if e.opts.Keys != nil {
		if cert, err = e.opts.Keys.RecipientSMIME(ctx, c.AccountID, c.Address); err != nil {
			return nil, "", fmt.Errorf("the recipient's key: %w", err)
		}
		if cert != nil {
			if signer, err = e.opts.Keys.SenderSMIME(ctx, c.AccountID, m.from); err != nil {
				return nil, "", fmt.Errorf("the sender's signing key: %w", err)
			}
		}
	}
	if cert == nil || cert.Cert == nil || !e.opts.Now().Before(cert.Cert.NotAfter) {
		return nil, noKey(methodSMIME), nil
	}
	enc, err = smime.Encrypt(m.raw, []*smime.Recipient{cert}, signer, smime.Options{})
	if err != nil {
		return nil, "encryption to the recipient's S/MIME certificate failed: " + errText(err), nil
	}
	return enc, "", nil
}

// tlsFallback applies secureline.Fallback to a group that requires
// verified TLS when its hosts offer none: the portal, or under
// tls_exclusive a deferral (bounced at the end of the lifetime). Never
// clear text, never unverified TLS.
func (e *Engine) tlsFallback(ctx context.Context, g *group, m *message, tf *tlsFailure) []outcome {
	mode, err := e.modes.get(ctx, g.accountID)
	if err != nil {
		e.opts.Logger.Warn("read the account's encryption mode", "account", g.accountID, "error", err)
		return e.outcomes(g.rcpts, stateDeferred, reply{}, "verified TLS is required and "+tf.what()+
			"; the account's encryption mode could not be read: deferred", tf.host, nil)
	}
	method, _ := secureline.Fallback(secureline.MethodTLS, true, mode)
	if method == secureline.MethodPortal {
		return e.toPortal(ctx, g, m, tf.what(), "tls_unverified")
	}
	e.metrics.secureFallbacks.WithLabelValues("tls_unverified", "defer").Add(float64(len(g.rcpts)))
	return e.outcomes(g.rcpts, stateDeferred, reply{}, "verified TLS is required and "+tf.what()+
		"; the account is TLS-exclusive: deferred, never sent otherwise", tf.host, nil)
}

// toPortal deposits the group's recipients in the portal and records
// them delivered there (remote host "portal"), all in one transaction of
// its own, so a deposit and its record commit together. It returns no
// outcome when that worked (there is nothing left to record), else
// deferrals: without a portal, or when the deposit fails.
func (e *Engine) toPortal(ctx context.Context, g *group, m *message, why, reason string) []outcome {
	if e.opts.Portal == nil || !e.opts.Portal.Enabled() {
		e.metrics.secureFallbacks.WithLabelValues(reason, "defer").Add(float64(len(g.rcpts)))
		return e.outcomes(g.rcpts, stateDeferred, reply{}, why+"; the portal is not configured: deferred, never sent in clear text", "", nil)
	}
	text := "delivered to the portal: " + why
	now := e.opts.Now()
	var recorded []outcome
	err := e.db.InTx(ctx, func(tx store.Tx) error {
		recorded = recorded[:0]
		for _, c := range g.rcpts {
			o := outcome{c: c, state: stateDelivered, reason: text, host: viaPortal, via: viaPortal}
			state, err := e.recordTx(ctx, tx, o, now)
			if err != nil {
				return err
			}
			if state == "" {
				continue // another node holds the recipient now
			}
			if _, err := e.opts.Portal.DepositTx(ctx, tx, portal.Deposit{AccountID: c.AccountID, MessageID: c.MessageID,
				RcptIndex: c.Index, Recipient: c.Address, Sender: m.from, Raw: m.raw}); err != nil {
				return fmt.Errorf("portal deposit: %w", err)
			}
			if err := noteFallback(ctx, tx, c, text); err != nil {
				return err
			}
			recorded = append(recorded, o)
		}
		return nil
	})
	if err != nil {
		e.opts.Logger.Warn("portal fallback failed", "account", g.accountID, "message", g.messageID, "error", err)
		e.metrics.secureFallbacks.WithLabelValues(reason, "defer").Add(float64(len(g.rcpts)))
		return e.outcomes(g.rcpts, stateDeferred, reply{}, why+"; the portal did not take the message: "+errText(err), "", nil)
	}
	for _, o := range recorded {
		e.count(o, stateDelivered)
	}
	e.metrics.secureFallbacks.WithLabelValues(reason, "portal").Add(float64(len(recorded)))
	return nil
}

// noteFallback records the recipient's method as portal with the reason
// added to those of the decision, for the message status API.
func noteFallback(ctx context.Context, tx store.Tx, c claimed, reason string) error {
	var stored string
	if err := tx.QueryRow(ctx, "SELECT enc_reasons FROM message_recipients WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3",
		c.AccountID, c.MessageID, c.Index).Scan(&stored); err != nil {
		return fmt.Errorf("read encryption reasons: %w", err)
	}
	var reasons []string
	if stored != "" {
		_ = json.Unmarshal([]byte(stored), &reasons) // unreadable reasons are replaced, not fatal
	}
	reasons = append(reasons, sanitizeReply(reason))
	return secureline.RecordTx(ctx, tx, c.AccountID, c.MessageID, c.Index, secureline.Decision{Method: secureline.MethodPortal, Reasons: reasons})
}

// modeTTL is how long an account's mode is cached per node: a change of
// mode applies to deliveries within it.
const modeTTL = time.Minute

// modeCache caches accounts' modes.
type modeCache struct {
	src Modes
	now func() time.Time

	mu      sync.Mutex
	entries map[string]modeEntry
}

type modeEntry struct {
	mode secureline.Mode
	at   time.Time
}

func newModeCache(src Modes, now func() time.Time) *modeCache {
	return &modeCache{src: src, now: now, entries: map[string]modeEntry{}}
}

// get returns the account's mode (secureline.DefaultMode without a
// source).
func (c *modeCache) get(ctx context.Context, accountID string) (secureline.Mode, error) {
	if c.src == nil {
		return secureline.DefaultMode, nil
	}
	now := c.now()
	c.mu.Lock()
	ent, ok := c.entries[accountID]
	c.mu.Unlock()
	if ok && now.Sub(ent.at) < modeTTL && now.Sub(ent.at) >= 0 {
		return ent.mode, nil
	}
	st, err := c.src.Settings(ctx, accountID)
	if err != nil {
		return "", err
	}
	if !st.Mode.Valid() {
		return "", errors.New("unknown encryption mode")
	}
	c.mu.Lock()
	c.entries[accountID] = modeEntry{mode: st.Mode, at: now}
	c.mu.Unlock()
	return st.Mode, nil
}

package delivery

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/store"
)

// outcome is what happened to one recipient in one attempt.
type outcome struct {
	c      claimed
	state  string // delivered, deferred, bounced, failed
	reply  reply
	reason string // when there is no SMTP reply (DNS, connection, TLS)
	host   string
	tls    *tls.ConnectionState
	// hard: a permanent refusal of the address itself (RFC 3463 X.1.x),
	// which suppresses it.
	hard bool
	// via is how a delivered recipient was protected, for the metrics
	// (secure.go); "" takes the recipient's method.
	via string
}

// message is a message as delivery needs it.
type message struct {
	from   string
	domain string
	utf8   bool
	// raw is the message as composed (RFC 5322), or once encrypted for
	// the recipient (secure.go) the encrypted message; signed is raw with
	// its DKIM signatures.
	raw    []byte
	signed []byte
}

// load opens a message (the group's body).
func (e *Engine) load(ctx context.Context, g *group) (message, error) {
	var m message
	var sealed []byte
	err := e.db.Reader().QueryRow(ctx, "SELECT from_addr, from_domain, smtputf8, body_sealed FROM messages WHERE account_id = $1 AND id = $2",
		g.accountID, g.messageID).Scan(&m.from, &m.domain, &m.utf8, &sealed)
	if err != nil {
		return message{}, fmt.Errorf("load message: %w", err)
	}
	ad := messages.BodyAD(g.accountID, g.messageID)
	if g.ownBody {
		c := g.rcpts[0]
		if err := e.db.Reader().QueryRow(ctx, "SELECT body_sealed FROM message_recipients WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3",
			g.accountID, g.messageID, c.Index).Scan(&sealed); err != nil {
			return message{}, fmt.Errorf("load recipient body: %w", err)
		}
		ad = messages.RecipientBodyAD(g.accountID, g.messageID, c.Index)
	}
	if sealed == nil {
		return message{}, errors.New("the message body was deleted (retention)")
	}
	raw, err := e.vault.Open(ctx, g.accountID, sealed, ad)
	if err != nil {
		return message{}, err
	}
	m.raw = raw
	return m, nil
}

// signMessage DKIM-signs m.raw with the sender domain's keys.
func (e *Engine) signMessage(ctx context.Context, g *group, m *message) error {
	keys, err := e.domains.SigningKeys(ctx, g.accountID, m.domain)
	if err != nil {
		return err
	}
	m.signed, err = sign(m.raw, keys)
	return err
}

// signedHeaders are the header fields DKIM signatures cover (RFC 6376
// §5.4.1), each listed once more than it can occur so that an added
// field breaks the signature (oversigning).
var signedHeaders = []string{"From", "From", "Reply-To", "Reply-To", "To", "To", "Cc", "Cc", "Subject", "Subject",
	"Date", "Date", "Message-ID", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post"}

// sign prepends an Ed25519 (RFC 8463) and an RSA-SHA256 DKIM signature,
// both computed in one pass over the message.
func sign(raw []byte, keys *domains.Keys) ([]byte, error) {
	signers := make([]*dkim.Signer, 0, 2)
	writers := make([]io.Writer, 0, 2)
	for _, k := range []struct {
		selector string
		key      crypto.Signer
	}{{keys.EdSelector, keys.Ed}, {keys.RSASelector, keys.RSA}} {
		s, err := dkim.NewSigner(&dkim.SignOptions{Domain: keys.Domain, Selector: k.selector, Signer: k.key, Hash: crypto.SHA256,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
			HeaderKeys: signedHeaders})
		if err != nil {
			return nil, fmt.Errorf("DKIM signer: %w", err)
		}
		signers, writers = append(signers, s), append(writers, s)
	}
	if _, err := io.MultiWriter(writers...).Write(raw); err != nil {
		return nil, err
	}
	var out []byte
	for _, s := range signers {
		if err := s.Close(); err != nil {
			return nil, fmt.Errorf("DKIM sign: %w", err)
		}
		out = append(out, s.Signature()...)
	}
	return append(out, raw...), nil
}

// deliverGroup delivers one message to its recipients at the domain over
// conn (opening one when nil) and returns the connection to keep using.
//
// Recipients SecureLine decided for pgp or smime get the message
// encrypted to their key before it is signed (or the portal when the key
// is gone); those decided for tls go only over a connection verified for
// the host name (or to the portal, or deferred, when none can be had).
func (e *Engine) deliverGroup(ctx context.Context, domain string, hosts []host, conn *smtpConn, g *group) (*smtpConn, []outcome) {
	m, err := e.load(ctx, g)
	if err == nil {
		if out, done := e.protect(ctx, g, &m); done {
			return conn, out
		}
	}
	if err == nil {
		err = e.signMessage(ctx, g, &m)
	}
	if err != nil {
		state := stateDeferred
		if errors.Is(err, domains.ErrUnverified) || errors.Is(err, store.ErrNotFound) {
			state = stateFailed // the sender domain is gone: retrying cannot help
		}
		return conn, e.outcomes(g.rcpts, state, reply{}, "cannot prepare the message: "+errText(err), "", nil)
	}
	rcpts := make([]string, len(g.rcpts))
	for i, c := range g.rcpts {
		rcpts[i] = c.Address
	}
	verified := g.method == methodTLS
	if conn != nil && verified && !conn.verified {
		e.release(domain, conn) // it stays for the next group that can use it
		conn = nil
	}
	env := envelope{From: e.returnPath(g, m.from), Rcpts: rcpts, Size: len(m.signed), UTF8: m.utf8, Body: m.signed}
	for attempt := 0; ; attempt++ {
		reused := conn != nil
		if conn == nil {
			conn = e.pool.get(domain, e.opts.Now(), verified)
			reused = conn != nil
		}
		if conn == nil {
			if conn, err = e.connect(ctx, hosts, verified); err != nil {
				var tf *tlsFailure
				if verified && errors.As(err, &tf) {
					return nil, e.tlsFallback(ctx, g, &m, tf)
				}
				return nil, e.outcomes(g.rcpts, stateDeferred, reply{}, "no mail host took the connection: "+errText(err), "", nil)
			}
		}
		tr, err := conn.send(env)
		if err != nil && !tr.Spoke && reused && attempt == 0 {
			// A pooled connection the server had closed: nothing was
			// said, so a fresh connection cannot duplicate anything.
			conn.close()
			conn = nil
			continue
		}
		return e.settle(conn, g, tr, err)
	}
}

// returnPath is the MAIL FROM of one transaction: Options.ReturnPath's
// answer (a signed bounce address), else the From address.
func (e *Engine) returnPath(g *group, from string) string {
	if e.opts.ReturnPath == nil {
		return from
	}
	index := -1
	if len(g.rcpts) == 1 {
		index = g.rcpts[0].Index
	}
	return e.opts.ReturnPath(g.accountID, g.messageID, from, index)
}

// settle turns a transaction into outcomes and decides whether the
// connection can carry the next message.
func (e *Engine) settle(conn *smtpConn, g *group, tr transaction, err error) (*smtpConn, []outcome) {
	host, tlsState := conn.host, conn.tls
	var mf *mailFromError
	var perm *permanentError
	switch {
	case errors.As(err, &perm):
		_ = conn.reset()
		return conn, e.outcomes(g.rcpts, stateBounced, perm.rep, "", host, tlsState)
	case errors.As(err, &mf):
		_ = conn.reset()
		return conn, e.outcomes(g.rcpts, stateFor(mf.rep), mf.rep, "", host, tlsState)
	case err != nil:
		// The connection broke. When it broke after the message was sent
		// but before the server confirmed it, a retry may deliver it
		// twice; the server said nothing, so there is no way to know.
		conn.close()
		return nil, e.outcomes(g.rcpts, stateDeferred, reply{}, "connection lost: "+errText(err), host, tlsState)
	}
	out := make([]outcome, len(g.rcpts))
	for i, c := range g.rcpts {
		rep, hard := tr.Rcpt[i], isHardBounce(tr.Rcpt[i]) // only RCPT's refusal speaks of the mailbox
		if rep.Code/100 == 2 {
			rep = tr.Data
		}
		out[i] = outcome{c: c, state: stateFor(rep), reply: rep, host: host, tls: tlsState, hard: hard}
	}
	if tr.Data.Code/100 != 2 {
		if rerr := conn.reset(); rerr != nil {
			conn.close()
			return nil, out
		}
	}
	if conn.sent >= e.opts.MessagesPerConn {
		conn.close()
		return nil, out
	}
	return conn, out
}

// failAll gives every recipient of a batch the outcome of a domain-wide
// failure (DNS).
func (e *Engine) failAll(batch []claimed, err error) []outcome {
	state := stateDeferred
	if errors.Is(err, resolve.ErrNullMX) || errors.Is(err, resolve.ErrNoSuchDomain) {
		state = stateBounced
	}
	return e.outcomes(batch, state, reply{}, "mail hosts: "+errText(err), "", nil)
}

func (e *Engine) outcomes(rcpts []claimed, state string, rep reply, reason, host string, st *tls.ConnectionState) []outcome {
	out := make([]outcome, len(rcpts))
	for i, c := range rcpts {
		out[i] = outcome{c: c, state: state, reply: rep, reason: reason, host: host, tls: st}
	}
	return out
}

// stateFor maps a reply to a recipient state: 2xx delivered, 4xx
// deferred, 5xx bounced (RFC 5321 §4.2.1).
func stateFor(rep reply) string {
	switch rep.Code / 100 {
	case 2:
		return stateDelivered
	case 5:
		return stateBounced
	}
	return stateDeferred
}

// isHardBounce reports a permanent refusal of the mailbox itself:
// enhanced status 5.1.x (RFC 3463 §3.2, addressing), or, without one, 550
// or 551 to RCPT.
func isHardBounce(rep reply) bool {
	if rep.Code/100 != 5 {
		return false
	}
	if rep.Enhanced != "" {
		return len(rep.Enhanced) > 3 && rep.Enhanced[:3] == "5.1"
	}
	return rep.Code == 550 || rep.Code == 551
}

// errText is an error's text for storage: printable, bounded.
func errText(err error) string { return sanitizeReply(err.Error()) }

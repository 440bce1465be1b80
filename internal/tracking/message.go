package tracking

import (
	"context"
	"fmt"
	"strconv"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
)

// MaxLinks is the most distinct links tracked in one message; further
// links are left as written.
const MaxLinks = 500

// Message instruments the recipients' bodies of one message, collecting
// its click targets. Use it from one goroutine: Recipient for each
// recipient, then Seal before the message's transaction and Insert
// inside it.
type Message struct {
	s                    *Service
	accountID, messageID string
	plan                 Plan
	targets              []string
	index                map[string]int
	sealed               [][]byte
}

// ForMessage starts the instrumentation of a message.
func (s *Service) ForMessage(accountID, messageID string, plan Plan) *Message {
	return &Message{s: s, accountID: accountID, messageID: messageID, plan: plan, index: map[string]int{}}
}

// Plan is the message's plan.
func (m *Message) Plan() Plan { return m.plan }

// Recipient applies the plan to recipient rcpt's draft: its HTML body
// gets tracked links and the pixel, and a marketing message gets the
// unsubscribe header fields (returned, for the draft's platform-set
// fields, since custom headers may not set them).
func (m *Message) Recipient(rcpt int, html string) (string, []mail.Header, error) {
	if !m.plan.Any() {
		return html, nil, nil
	}
	ref := Ref{AccountID: m.accountID, MessageID: m.messageID, Rcpt: rcpt}
	var o Instrumentation
	o.Own = m.s.base + "/"
	var headers []mail.Header
	if m.plan.Unsubscribe {
		u, err := m.url(ref, PurposeUnsubscribe, "/u/")
		if err != nil {
			return "", nil, err
		}
		o.Unsubscribe = u
		headers = UnsubscribeHeaders(u)
	}
	if m.plan.Opens {
		u, err := m.url(ref, PurposeOpen, "/t/o/")
		if err != nil {
			return "", nil, err
		}
		o.Pixel = u
	}
	var failed error
	if m.plan.Clicks {
		o.Click = func(target string) (string, bool) {
			i, ok := m.link(target)
			if !ok {
				return "", false
			}
			r := ref
			r.Link = i
			u, err := m.url(r, PurposeClick, "/t/c/")
			if err != nil {
				failed = err
				return "", false
			}
			return u, true
		}
	}
	if html == "" {
		return "", headers, nil
	}
	out := Instrument(html, o)
	if failed != nil {
		return "", nil, failed
	}
	return out, headers, nil
}

// UnsubscribeHeaders are the header fields of a marketing message:
// List-Unsubscribe with the HTTPS one-click URL (RFC 2369 §3.2, angle
// brackets around the URL) and List-Unsubscribe-Post (RFC 8058 §3.1),
// which tells mailbox providers they may unsubscribe with a POST and no
// further interaction. Both must be covered by the DKIM signature
// (RFC 8058 §4); package delivery signs them.
func UnsubscribeHeaders(unsubscribeURL string) []mail.Header {
	return []mail.Header{
		{Name: "List-Unsubscribe", Value: "<" + unsubscribeURL + ">"},
		{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
	}
}

func (m *Message) url(r Ref, p Purpose, path string) (string, error) {
	r.Purpose = p
	tok, err := m.s.signer.encode(r)
	if err != nil {
		return "", err
	}
	return m.s.base + path + tok, nil
}

// link returns the index of target among the message's links, adding it.
func (m *Message) link(target string) (int, bool) {
	if i, ok := m.index[target]; ok {
		return i, true
	}
	if len(m.targets) >= MaxLinks {
		return 0, false
	}
	m.targets = append(m.targets, target)
	m.index[target] = len(m.targets) - 1
	return len(m.targets) - 1, true
}

// Links returns the number of distinct tracked links so far.
func (m *Message) Links() int { return len(m.targets) }

// linkAD binds a sealed target to its account, message and index.
func linkAD(accountID, messageID string, i int) []byte {
	return []byte("tracking/" + accountID + "/" + messageID + "/link/" + strconv.Itoa(i))
}

// Seal seals the click targets collected so far with the account's data
// key. Call it after the last Recipient and before Insert, outside the
// message's transaction.
func (m *Message) Seal(ctx context.Context) error {
	for i := len(m.sealed); i < len(m.targets); i++ {
		ct, err := m.s.vault.Seal(ctx, m.accountID, []byte(m.targets[i]), linkAD(m.accountID, m.messageID, i))
		if err != nil {
			return fmt.Errorf("seal link: %w", err)
		}
		m.sealed = append(m.sealed, ct)
	}
	return nil
}

// Insert stores the sealed click targets, in the transaction that stores
// the message.
func (m *Message) Insert(ctx context.Context, q store.Querier) error {
	if len(m.sealed) != len(m.targets) {
		return fmt.Errorf("tracking: Insert before Seal")
	}
	for i, ct := range m.sealed {
		if _, err := q.Exec(ctx, `INSERT INTO tracking_links (message_id, link_index, account_id, target_sealed) VALUES ($1, $2, $3, $4)
			ON CONFLICT (message_id, link_index) DO NOTHING`, m.messageID, i, m.accountID, ct); err != nil {
			return fmt.Errorf("store link: %w", err)
		}
	}
	return nil
}

// Begin implements messages.Tracker: it plans a message and returns its
// instrumentation, or nil when the plan changes nothing.
func (s *Service) Begin(ctx context.Context, accountID, messageID, kind string, t messages.Tracking) (messages.MessageTracker, error) {
	plan, err := s.PlanFor(ctx, accountID, kind, t)
	if err != nil || !plan.Any() {
		return nil, err
	}
	return s.ForMessage(accountID, messageID, plan), nil
}

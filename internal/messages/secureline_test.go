package messages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/portal"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// noNotices is a portal notifier for tests that never run the notice job.
type noNotices struct{}

func (noNotices) Notify(context.Context, portal.Notice) (string, error) {
	return "", errors.New("no notices in this test")
}

// secureWorld is world with the acceptance step: the real scanner,
// policy engine, quarantine, decision settings and portal.
type secureWorld struct {
	*world
	msgs     *messages.Service
	decide   *secureline.Service
	rules    *policy.Engine
	hold     *policy.QuarantineStore
	portal   *portal.Service
	accepted *messages.SecureLine
}

func newSecureWorld(t *testing.T, s *store.Store) *secureWorld {
	t.Helper()
	w := &secureWorld{world: newWorld(t, s, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))}
	scanner, err := dlp.New(dlp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.rules, err = policy.New(s, nil, policy.Options{Now: w.now}); err != nil {
		t.Fatal(err)
	}
	if w.portal, err = portal.New(context.Background(), s, w.vault, w.master, w.queue, audit.New(s, audit.Options{}), noNotices{},
		portal.Options{BaseURL: "https://mail.clinic.example", Now: w.now}); err != nil {
		t.Fatal(err)
	}
	if err := queue.AddWorker(w.queue, &portal.NotifyWorker{Service: w.portal}); err != nil {
		t.Fatal(err)
	}
	w.decide = secureline.New(s, secureline.Options{Now: w.now})
	w.accepted = &messages.SecureLine{Scanner: scanner, Policies: w.rules, Decisions: w.decide, Portal: w.portal}
	w.msgs = messages.New(s, w.vault, w.domains, w.queue, messages.Options{Lifetime: 24 * time.Hour, Now: w.now, SecureLine: w.accepted})
	w.hold = policy.NewQuarantine(s, nil, policy.QuarantineOptions{Now: w.now, Hook: w.msgs})
	w.accepted.Quarantine = w.hold
	return w
}

func (w *secureWorld) setMode(mode secureline.Mode) {
	w.t.Helper()
	if err := w.decide.SetSettings(context.Background(), w.a, secureline.Settings{Mode: mode, SubjectTag: "[secure]"}); err != nil {
		w.t.Fatal(err)
	}
}

// recipientRow reads what acceptance stored for a recipient.
func (w *secureWorld) recipientRow(id string, rcpt int) (state, method, host string) {
	w.t.Helper()
	if err := w.db.Reader().QueryRow(context.Background(), `SELECT state, enc_method, remote_host FROM message_recipients
		WHERE account_id = $1 AND message_id = $2 AND rcpt_index = $3`, w.a.Principal.AccountID, id, rcpt).Scan(&state, &method, &host); err != nil {
		w.t.Fatal(err)
	}
	return
}

// portalSubject opens the portal copy of a message and returns its subject.
func (w *secureWorld) portalSubject(messageID string) string {
	w.t.Helper()
	ctx := context.Background()
	accountID := w.a.Principal.AccountID
	var id string
	var sealed []byte
	if err := w.db.Reader().QueryRow(ctx, "SELECT id, content_sealed FROM portal_messages WHERE account_id = $1 AND message_id = $2",
		accountID, messageID).Scan(&id, &sealed); err != nil {
		w.t.Fatal(err)
	}
	plain, err := w.vault.Open(ctx, accountID, sealed, portal.ContentAD(accountID, id))
	if err != nil {
		w.t.Fatal(err)
	}
	var c portal.Content
	if err := json.Unmarshal(plain, &c); err != nil {
		w.t.Fatal(err)
	}
	return c.Subject
}

func TestRelaySubjectTagIsRemovedAndRaisesToEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newSecureWorld(t, s)
		ctx := context.Background()
		tests := []struct {
			name, subject, want string
			tagged              bool
		}{
			{"a plain tag is removed and the copy goes to the portal", "[secure] Lab results", "Lab results", true},
			{"the tag in any case inside an encoded word is removed", "=?utf-8?q?R=C3=A9sultats_[SECURE]?=", "Résultats", true},
			{"a subject without the tag is left alone", "Lab results", "Lab results", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				raw := "From: Clinic <results@clinic.example>\r\nTo: lee@patient.example\r\nSubject: " + tt.subject + "\r\n\r\nAll normal.\r\n"
				acc, err := w.msgs.SendRaw(ctx, w.a, []string{"lee@patient.example"}, []byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				state, method, host := w.recipientRow(acc.ID, 0)
				if !tt.tagged {
					if method != "tls" || state != messages.StateQueued {
						t.Errorf("untagged: state %s method %s", state, method)
					}
					return
				}
				if state != messages.StateDelivered || method != "portal" || host != messages.PortalHost {
					t.Fatalf("tagged: state %s method %s host %s", state, method, host)
				}
				if got := w.portalSubject(acc.ID); got != tt.want {
					t.Errorf("portal subject %q, want %q", got, tt.want)
				}
				var sealed []byte
				if err := w.db.Reader().QueryRow(ctx, "SELECT body_sealed FROM messages WHERE account_id = $1 AND id = $2",
					w.a.Principal.AccountID, acc.ID).Scan(&sealed); err != nil {
					t.Fatal(err)
				}
				body, err := w.vault.Open(ctx, w.a.Principal.AccountID, sealed, messages.BodyAD(w.a.Principal.AccountID, acc.ID))
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(bytes.ToLower(body), []byte("[secure]")) {
					t.Errorf("the stored message keeps the tag: %q", body)
				}
			})
		}
	})
}

func TestOnlyThePortalsOwnNoticesBypassTheDecision(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newSecureWorld(t, s)
		w.setMode(secureline.ModePortalAlways)
		ctx := context.Background()
		req := messages.Request{From: "results@clinic.example", To: []string{"pat@patient.example"}, Subject: "You have a secure message",
			Text: "Open the link.", Tags: []string{"sealpost-portal"}, Encryption: "tls"}
		system := account.Actor{Principal: auth.Principal{AccountID: w.a.Principal.AccountID, ActorKind: auth.ActorSystem, ActorID: "portal"}}
		acc, err := w.msgs.Send(ctx, system, req, "")
		if err != nil {
			t.Fatal(err)
		}
		if state, method, _ := w.recipientRow(acc.ID, 0); state != messages.StateQueued || method != "notice" {
			t.Errorf("the portal's notice: state %s method %s, want queued as a notice", state, method)
		}
		// A client tagging its own message like a notice gets the mode:
		// under portal_always a tls pin is refused.
		_, err = w.msgs.Send(ctx, w.a, req, "")
		var ee *messages.EncryptionError
		if !errors.As(err, &ee) || ee.Field != "to[0]" || strings.Contains(ee.Reason, "pat@") {
			t.Errorf("a client's look-alike notice: %v", err)
		}
	})
}

func TestPHIUnderForcedTLSIsRecordedAsTLSWithReasons(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newSecureWorld(t, s)
		acc, err := w.msgs.Send(context.Background(), w.a, messages.Request{From: "results@clinic.example", To: []string{"pat@patient.example"},
			Subject: "Results", Text: "Patient SSN 205-89-4542, diagnosis E11.9."}, "")
		if err != nil {
			t.Fatal(err)
		}
		if state, method, _ := w.recipientRow(acc.ID, 0); state != messages.StateQueued || method != "tls" {
			t.Fatalf("state %s method %s", state, method)
		}
		var reasons string
		if err := w.db.Reader().QueryRow(context.Background(), "SELECT enc_reasons FROM message_recipients WHERE account_id = $1 AND message_id = $2",
			w.a.Principal.AccountID, acc.ID).Scan(&reasons); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(reasons, "icd10") || !strings.Contains(reasons, "verified by delivery") || strings.Contains(reasons, "4542") {
			t.Errorf("reasons %s", reasons)
		}
	})
}

func TestQuarantineReviewResumesOrFailsTheHeldRecipients(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newSecureWorld(t, s)
		ctx := context.Background()
		if _, err := w.rules.Replace(ctx, w.a, []policy.RuleInput{{Name: "hold", Conditions: policy.Conditions{Tags: []string{"holdme"}},
			Action: policy.Quarantine}}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name       string
			mode       secureline.Mode
			reject     bool
			wantState  string
			wantMethod string
		}{
			{"release queues a tls recipient for delivery", secureline.ModeForcedTLS, false, messages.StateQueued, "tls"},
			{"release deposits a portal recipient in the portal", secureline.ModePortalAlways, false, messages.StateDelivered, "portal"},
			{"reject fails the recipient", secureline.ModeForcedTLS, true, messages.StateFailed, "tls"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w.setMode(tt.mode)
				acc, err := w.msgs.Send(ctx, w.a, messages.Request{From: "results@clinic.example", To: []string{"pat@patient.example"},
					Subject: "Results", Text: "Patient SSN 205-89-4542.", Tags: []string{"holdme"}}, "")
				if err != nil {
					t.Fatal(err)
				}
				if state, method, _ := w.recipientRow(acc.ID, 0); state != messages.StateQuarantined || method != tt.wantMethod {
					t.Fatalf("held: state %s method %s", state, method)
				}
				if e, err := w.hold.Get(ctx, w.a.Principal.AccountID, acc.ID); err != nil || e.Status != policy.StatusPending {
					t.Fatalf("hold entry: %+v %v", e, err)
				}
				review := w.hold.Release
				if tt.reject {
					review = w.hold.Reject
				}
				if _, err := review(ctx, w.a, acc.ID); err != nil {
					t.Fatal(err)
				}
				state, method, host := w.recipientRow(acc.ID, 0)
				if state != tt.wantState || method != tt.wantMethod {
					t.Errorf("after review: state %s method %s", state, method)
				}
				if tt.wantMethod == "portal" && (host != messages.PortalHost || w.portalSubject(acc.ID) != "Results") {
					t.Errorf("portal release: host %s", host)
				}
			})
		}
	})
}

package messages_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/dlpsettings"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// An account's own clinical term counts at acceptance for that account
// only: the other account, with the same threshold but no terms, sends
// the same words as a message without PHI.
func TestAccountTermMakesPHIAtAcceptanceForThatAccountOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newSecureWorld(t, s)
		ctx := context.Background()
		settings, err := dlpsettings.New(s, nil, dlpsettings.Options{Now: w.now})
		if err != nil {
			t.Fatal(err)
		}
		w.accepted.Scanners = settings
		// An account's own term alone makes a message PHI at the default
		// threshold (docs/dlp.md); account B lowers its threshold and
		// still finds nothing, since the term is A's only.
		if _, err := settings.Replace(ctx, w.a, dlpsettings.Settings{Terms: []string{"zolgensma"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := settings.Replace(ctx, w.b, dlpsettings.Settings{Threshold: 0.2}); err != nil {
			t.Fatal(err)
		}
		reasons := func(actor account.Actor, from string, relayed bool) string {
			t.Helper()
			var acc messages.Accepted
			var err error
			if relayed {
				raw := "From: " + from + "\r\nTo: pat@patient.example\r\nSubject: Your infusion\r\n\r\nYour zolgensma infusion is on Monday.\r\n"
				acc, err = w.msgs.SendRaw(ctx, actor, []string{"pat@patient.example"}, []byte(raw))
			} else {
				acc, err = w.msgs.Send(ctx, actor, messages.Request{From: from, To: []string{"pat@patient.example"},
					Subject: "Your infusion", Text: "Your zolgensma infusion is on Monday."}, "")
			}
			if err != nil {
				t.Fatal(err)
			}
			var r string
			if err := s.Reader().QueryRow(ctx, "SELECT enc_reasons FROM message_recipients WHERE account_id = $1 AND message_id = $2",
				actor.Principal.AccountID, acc.ID).Scan(&r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		for _, relayed := range []bool{false, true} {
			if r := reasons(w.a, "care@clinic.example", relayed); !strings.Contains(r, "likely PHI (account_term") {
				t.Errorf("account A (relayed %v): %s", relayed, r)
			}
			if r := reasons(w.b, "care@other.example", relayed); !strings.Contains(r, "no PHI") || strings.Contains(r, "account_term") {
				t.Errorf("account B (relayed %v): %s", relayed, r)
			}
		}
	})
}

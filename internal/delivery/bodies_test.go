package delivery_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/sealpost/sealpost/internal/delivery"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/templates"
)

// templated gives w a messages service that can send from templates and
// one stored template greeting {{.name}}.
func templated(t *testing.T, w *world) (*messages.Service, string) {
	t.Helper()
	ctx := context.Background()
	q, err := queue.New(w.db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.must(queue.AddWorker(q, &delivery.DomainWorker{Engine: w.engine}))
	tmpls := templates.New(w.db, templates.Options{})
	tpl, err := tmpls.Create(ctx, w.actor.Principal.AccountID, templates.NewTemplate{Name: "greeting",
		Content: templates.Content{Subject: "For {{.name}}", HTML: "<p>Dear {{.name}}, {{.note}}</p>"}})
	if err != nil {
		t.Fatal(err)
	}
	return messages.New(w.db, w.vault, w.domains, q, messages.Options{Lifetime: 24 * time.Hour, Now: w.now, Templates: tmpls}), tpl.ID
}

func TestRecipientsWithOwnBodiesGetTheirOwnTransaction(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, delivery.TLSRequired)
		msgs, tplID := templated(t, w)
		_, err := msgs.Send(ctx, w.actor, messages.Request{From: "reminders@clinic.example",
			To: []string{"ada@patient.example", "bob@patient.example"}, Cc: []string{"cy@patient.example"},
			Template: tplID, TemplateData: map[string]any{"name": "patient", "note": "see you"},
			RecipientData: map[string]map[string]any{"ada@patient.example": {"name": "Ada"}, "BOB@patient.example": {"name": "Bob"}}}, "")
		if err != nil {
			t.Fatal(err)
		}
		w.send("dee@patient.example", "eve@patient.example") // no own bodies: one transaction
		w.deliver("patient.example")

		got := w.sink.Messages()
		if len(got) != 4 {
			t.Fatalf("the sink received %d transactions, want 3 personalised and 1 shared", len(got))
		}
		want := map[string]string{"ada@patient.example": "Ada", "bob@patient.example": "Bob", "cy@patient.example": "patient"}
		for _, m := range got {
			if len(m.Rcpts) == 2 {
				if !bytes.Contains(m.Data, []byte("Your appointment")) {
					t.Errorf("the shared message:\n%s", m.Data)
				}
				continue
			}
			name, ok := want[m.Rcpts[0]]
			if len(m.Rcpts) != 1 || !ok {
				t.Fatalf("unexpected transaction to %v", m.Rcpts)
			}
			delete(want, m.Rcpts[0])
			if !bytes.Contains(m.Data, []byte("Subject: For "+name+"\r\n")) || !bytes.Contains(m.Data, []byte("Dear "+name+", see you")) {
				t.Errorf("the message to %s:\n%s", m.Rcpts[0], m.Data)
			}
			// The To and Cc headers stay those of the message.
			if !bytes.Contains(m.Data, []byte("Cc: cy@patient.example")) {
				t.Errorf("the message to %s lost its Cc header", m.Rcpts[0])
			}
			verifs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{
				LookupTXT: func(name string) ([]string, error) { return w.resolver.TXT(ctx, name) }})
			if err != nil || len(verifs) != 2 || verifs[0].Err != nil || verifs[1].Err != nil {
				t.Errorf("the message to %s does not verify: %v %+v", m.Rcpts[0], err, verifs)
			}
		}
		if len(want) != 0 {
			t.Errorf("not delivered to %v", want)
		}
	})
}

// A recipient's sealed body is bound to that recipient: one moved to
// another recipient's row does not open, so nobody is sent another
// patient's message.
func TestARecipientBodyCannotBeSentToAnotherRecipient(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, delivery.TLSRequired)
		msgs, tplID := templated(t, w)
		acc, err := msgs.Send(ctx, w.actor, messages.Request{From: "reminders@clinic.example",
			To: []string{"ada@patient.example", "bob@patient.example"}, Template: tplID, TemplateData: map[string]any{"note": "x"},
			RecipientData: map[string]map[string]any{"ada@patient.example": {"name": "Ada"}, "bob@patient.example": {"name": "Bob"}}}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Writer().Exec(ctx, `UPDATE message_recipients SET body_sealed = (SELECT body_sealed FROM message_recipients
			WHERE message_id = $1 AND rcpt_index = 1) WHERE message_id = $1 AND rcpt_index = 0`, acc.ID); err != nil {
			t.Fatal(err)
		}
		w.deliver("patient.example")
		for _, m := range w.sink.Messages() {
			if m.Rcpts[0] == "ada@patient.example" {
				t.Fatalf("ada received a message:\n%s", m.Data)
			}
		}
		if st := w.status(acc.ID); st.Recipients[0].State == messages.StateDelivered || st.Recipients[1].State != messages.StateDelivered {
			t.Errorf("states: %s and %s", st.Recipients[0].State, st.Recipients[1].State)
		}
		if !strings.Contains(string(w.sink.Messages()[0].Data), "Dear Bob") {
			t.Error("bob did not get his own message")
		}
	})
}

// Rescheduling a message moves the Date of its recipients' own bodies too.
func TestRescheduleRedatesRecipientBodies(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := newWorld(t, s, delivery.TLSRequired)
		msgs, tplID := templated(t, w)
		acc, err := msgs.Send(ctx, w.actor, messages.Request{From: "reminders@clinic.example", SendAt: w.now().Add(time.Hour),
			To: []string{"ada@patient.example", "bob@patient.example"}, Template: tplID, TemplateData: map[string]any{"note": "x"},
			RecipientData: map[string]map[string]any{"ada@patient.example": {"name": "Ada"}, "bob@patient.example": {"name": "Bob"}}}, "")
		if err != nil {
			t.Fatal(err)
		}
		at := w.now().Add(2 * time.Hour).Truncate(time.Second)
		if _, err := msgs.Reschedule(ctx, w.actor.Principal.AccountID, acc.ID, at); err != nil {
			t.Fatal(err)
		}
		w.advance(3 * time.Hour)
		w.deliver("patient.example")
		got := w.sink.Messages()
		if len(got) != 2 {
			t.Fatalf("the sink received %d messages, want 2", len(got))
		}
		dateLine := regexp.MustCompile(`(?m)^Date: (.*)\r$`)
		for _, m := range got {
			match := dateLine.FindSubmatch(m.Data)
			if match == nil {
				t.Fatalf("no Date in the message to %s", m.Rcpts[0])
			}
			d, err := time.Parse(time.RFC1123Z, string(match[1]))
			if err != nil || !d.Equal(at) {
				t.Errorf("the message to %s is dated %s, want %s", m.Rcpts[0], match[1], at)
			}
		}
	})
}

package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/policy"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// world is a migrated store with two accounts, a clock the test moves,
// and the engine and quarantine over them.
type world struct {
	db             *store.Store
	log            *audit.Log
	engine         *policy.Engine
	now            time.Time
	a, b           string
	ownerA, ownerB account.Actor
}

func newWorld(t *testing.T, s *store.Store) *world {
	t.Helper()
	w := &world{db: s, now: t0, a: "acct-a", b: "acct-b"}
	w.log = audit.New(s, audit.Options{Now: w.clock})
	var err error
	if w.engine, err = policy.New(s, w.log, policy.Options{Now: w.clock}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{w.a, w.b} {
		if _, err := s.Writer().Exec(context.Background(), "INSERT INTO accounts (id, name, created_at) VALUES ($1, $1, $2)", id, store.Micros(t0)); err != nil {
			t.Fatal(err)
		}
	}
	w.ownerA = account.Actor{Principal: auth.Principal{AccountID: w.a, ActorKind: auth.ActorSystem, ActorID: "owner-a"}}
	w.ownerB = account.Actor{Principal: auth.Principal{AccountID: w.b, ActorKind: auth.ActorSystem, ActorID: "owner-b"}}
	return w
}

func (w *world) clock() time.Time { return w.now }

// auditActions returns the account's audit actions with the given
// prefix, oldest first, and their details.
func (w *world) audited(t *testing.T, accountID, prefix string) []audit.Event {
	t.Helper()
	page, err := w.log.List(context.Background(), accountID, audit.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range page.Events {
		if strings.HasPrefix(e.Action, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func TestReplaceStoresOrderedRulesAndKeepsIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		doc, err := w.engine.Document(ctx, w.a)
		if err != nil || len(doc.Rules) != 0 || doc.UpdatedAt != nil {
			t.Fatalf("initial document = %+v, %v", doc, err)
		}
		first, err := w.engine.Replace(ctx, w.ownerA, []policy.RuleInput{
			{Name: "ssn to portal", Conditions: policy.Conditions{Findings: []policy.FindingCondition{{Type: dlp.SSN}}}, Action: policy.ForcePortal},
			{Name: "partners", Description: "trusted", Conditions: policy.Conditions{RecipientDomains: []string{"*.Partner.example"}},
				Action: policy.RequireEncryption, MinEncryption: policy.EncryptionEndToEnd},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(first.Rules) != 2 || first.Rules[0].Name != "ssn to portal" || first.Rules[1].Position != 1 ||
			first.Rules[1].Conditions.RecipientDomains[0] != "*.partner.example" || first.UpdatedAt == nil || !first.UpdatedAt.Equal(t0) {
			t.Fatalf("first replace = %+v", first)
		}
		if *first.Rules[0].Conditions.Findings[0].MinConfidence != dlp.Likely {
			t.Errorf("stored finding condition lost its default: %+v", first.Rules[0].Conditions.Findings[0])
		}

		// Reorder, keeping the partners rule's id, and add one.
		w.now = t0.Add(time.Hour)
		kept := first.Rules[1].ID
		second, err := w.engine.Replace(ctx, w.ownerA, []policy.RuleInput{
			{ID: kept, Name: "partners", Conditions: first.Rules[1].Conditions, Action: policy.RequireEncryption, MinEncryption: policy.EncryptionEndToEnd},
			{Name: "marketing", Enabled: ptr(false), Conditions: policy.Conditions{Kind: "marketing"}, Action: policy.Block},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.engine.Document(ctx, w.a)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Rules) != 2 || got.Rules[0].ID != kept || got.Rules[0].Position != 0 || !got.Rules[0].CreatedAt.Equal(t0) ||
			!got.Rules[0].UpdatedAt.Equal(w.now) || got.Rules[1].Enabled || got.Rules[1].ID == first.Rules[0].ID {
			t.Fatalf("after reorder = %+v", got.Rules)
		}
		if second.Rules[1].ID != got.Rules[1].ID {
			t.Errorf("Replace returned %s, the store holds %s", second.Rules[1].ID, got.Rules[1].ID)
		}

		events := w.audited(t, w.a, "dlp.")
		if len(events) != 2 || events[0].Action != "dlp.policy_updated" || events[0].Details["previous_rules"] != "0" ||
			events[0].Details["rules"] != "2" || events[1].Details["previous_rules"] != "2" || events[1].Details["rules"] != "2" {
			t.Fatalf("audit = %+v", events)
		}
	})
}

func TestReplaceRefusesWithoutChanging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		if _, err := w.engine.Replace(ctx, w.ownerA, []policy.RuleInput{{Name: "r", Action: policy.Block}}); err != nil {
			t.Fatal(err)
		}
		for name, rules := range map[string][]policy.RuleInput{
			"unknown id":  {{ID: "no-such-rule", Name: "r", Action: policy.Allow}},
			"bad action":  {{Name: "r", Action: "maybe"}},
			"bad pattern": {{Name: "r", Action: policy.Allow, Conditions: policy.Conditions{Senders: []string{"*"}}}},
		} {
			_, err := w.engine.Replace(ctx, w.ownerA, rules)
			if !errors.Is(err, policy.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			}
		}
		doc, _ := w.engine.Document(ctx, w.a)
		if len(doc.Rules) != 1 || doc.Rules[0].Action != policy.Block {
			t.Fatalf("a refused replace changed the rules: %+v", doc.Rules)
		}
		if n := len(w.audited(t, w.a, "dlp.")); n != 1 {
			t.Errorf("%d audit events, want 1 (refusals are not audited as changes)", n)
		}
	})
}

func TestRulesAreIsolatedByAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		docA, err := w.engine.Replace(ctx, w.ownerA, []policy.RuleInput{{Name: "block all", Action: policy.Block}})
		if err != nil {
			t.Fatal(err)
		}
		docB, err := w.engine.Document(ctx, w.b)
		if err != nil || len(docB.Rules) != 0 || docB.UpdatedAt != nil {
			t.Fatalf("account B sees %+v, %v", docB, err)
		}
		// B cannot adopt A's rule by id.
		_, err = w.engine.Replace(ctx, w.ownerB, []policy.RuleInput{{ID: docA.Rules[0].ID, Name: "steal", Action: policy.Allow}})
		if !errors.Is(err, policy.ErrInvalid) {
			t.Fatalf("B replaced with A's rule id: %v", err)
		}
		// Evaluation uses the input's account only.
		in := cleanInput()
		in.AccountID = w.b
		d, err := w.engine.Evaluate(ctx, in, "x.example")
		if err != nil || d.Action != policy.Allow || d.RuleID != "" {
			t.Fatalf("B's decision = %+v, %v, want A's rule not to apply", d, err)
		}
		in.AccountID = w.a
		if d, _ := w.engine.Evaluate(ctx, in, "x.example"); d.Action != policy.Block || d.RuleID != docA.Rules[0].ID {
			t.Fatalf("A's decision = %+v", d)
		}
		if _, err := w.engine.Evaluate(ctx, policy.Input{}, "x.example"); err == nil {
			t.Error("Evaluate without an account succeeded")
		}
	})
}

func TestDryRunExplainsWithoutMatchedText(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := newWorld(t, s)
		ctx := context.Background()
		_, err := w.engine.Replace(ctx, w.ownerA, []policy.RuleInput{{Name: "partners e2e",
			Conditions: policy.Conditions{RecipientDomains: []string{"partner.example"}, ContainsPHI: ptr(true)},
			Action:     policy.RequireEncryption, MinEncryption: policy.EncryptionEndToEnd}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := w.engine.DryRun(ctx, w.a, policy.DryRunMessage{From: "Clinic <billing@clinic.example>",
			To: []string{"pat@patient.example", "Pat@patient.example"}, Cc: []string{"doc@partner.example"},
			Subject: "Your results", Text: "Patient SSN 205-89-4542, diagnosis E11.9."})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Scan.ContainsPHI || len(res.Scan.Findings) != 2 || res.Scan.Findings[0].Type != dlp.SSN || res.Scan.Findings[1].Type != dlp.ICD10 {
			t.Fatalf("scan = %+v", res.Scan)
		}
		if len(res.Recipients) != 2 {
			t.Fatalf("recipients = %+v, want the duplicate folded", res.Recipients)
		}
		pat, doc := res.Recipients[0], res.Recipients[1]
		if pat.Action != policy.RequireEncryption || pat.MinEncryption != policy.EncryptionTLS || pat.RuleID != "" || pat.RulePosition != nil {
			t.Errorf("patient = %+v, want the default", pat)
		}
		if doc.RuleName != "partners e2e" || doc.RulePosition == nil || *doc.RulePosition != 0 || doc.MinEncryption != policy.EncryptionEndToEnd {
			t.Errorf("partner = %+v, want the rule", doc)
		}
		for _, r := range res.Recipients {
			joined := strings.Join(r.Reasons, " ")
			if strings.Contains(joined, "4542") || strings.Contains(joined, "205-89") || strings.Contains(joined, "E11") {
				t.Errorf("reasons repeat matched text: %q", joined)
			}
		}
		for _, bad := range []policy.DryRunMessage{
			{From: "not an address", To: []string{"a@b.example"}},
			{From: "a@b.example"},
			{From: "a@b.example", To: []string{"a@b.example"}, Kind: "bulk"},
		} {
			if _, err := w.engine.DryRun(ctx, w.a, bad); err == nil {
				t.Errorf("dry run of %+v succeeded", bad)
			}
		}
	})
}

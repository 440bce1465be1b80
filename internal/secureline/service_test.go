package secureline_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/dlp"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/smime"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

// fixture is two accounts on one store.
type fixture struct {
	db   *store.Store
	log  *audit.Log
	a, b account.Actor
}

func newFixture(t *testing.T, s *store.Store) *fixture {
	t.Helper()
	f := &fixture{db: s, log: audit.New(s, audit.Options{})}
	accts := account.NewStore(s)
	for i, name := range []string{"Clinic", "Other"} {
		creds, _, err := account.Bootstrap(context.Background(), s, accts, f.log,
			account.BootstrapOptions{AccountName: name, OwnerEmail: "owner@" + strings.ToLower(name) + ".example", Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		a := account.Actor{Principal: auth.Principal{AccountID: creds.AccountID, ActorKind: auth.ActorClient, ActorID: creds.ClientID,
			Scopes: auth.AllScopes()}, SourceIP: "192.0.2.1", RequestID: "req-1"}
		if i == 0 {
			f.a = a
		} else {
			f.b = a
		}
	}
	return f
}

func TestSettingsDefaultsReplaceAuditAndStayInTheirAccount(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newFixture(t, s)
		svc := secureline.New(s, secureline.Options{Audit: f.log})
		st, err := svc.Settings(ctx, f.a.Principal.AccountID)
		if err != nil || st != secureline.DefaultSettings {
			t.Fatalf("defaults: %+v %v", st, err)
		}
		want := secureline.Settings{Mode: secureline.ModeTLSExclusive, SubjectTag: "ENCRYPT:"}
		if err := svc.SetSettings(ctx, f.a, want); err != nil {
			t.Fatal(err)
		}
		if st, _ := svc.Settings(ctx, f.a.Principal.AccountID); st != want {
			t.Fatalf("after set: %+v", st)
		}
		// Replacing again updates the one row.
		want.Mode, want.WKDEnabled = secureline.ModePortalAlways, true
		if err := svc.SetSettings(ctx, f.a, want); err != nil {
			t.Fatal(err)
		}
		if st, _ := svc.Settings(ctx, f.a.Principal.AccountID); st != want {
			t.Fatalf("after replace: %+v", st)
		}
		// The other account still has the defaults.
		if st, _ := svc.Settings(ctx, f.b.Principal.AccountID); st != secureline.DefaultSettings {
			t.Fatalf("other account sees %+v", st)
		}
		page, err := f.log.List(ctx, f.a.Principal.AccountID, audit.Query{Action: "secureline.settings_updated"})
		if err != nil || len(page.Events) != 2 || page.Events[0].Details["mode"] == "" || page.Events[1].Details["wkd_enabled"] != "true" {
			t.Fatalf("audit: %+v %v", page, err)
		}
		if other, _ := f.log.List(ctx, f.b.Principal.AccountID, audit.Query{Action: "secureline.settings_updated"}); len(other.Events) != 0 {
			t.Fatalf("other account's audit: %+v", other)
		}
	})
}

func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		svc := secureline.New(s, secureline.Options{})
		tests := []struct {
			name  string
			st    secureline.Settings
			field string
		}{
			{"an unknown mode is refused", secureline.Settings{Mode: "always_clear", SubjectTag: "[secure]"}, "mode"},
			{"an empty mode is refused", secureline.Settings{SubjectTag: "[secure]"}, "mode"},
			{"an empty tag is refused", secureline.Settings{Mode: secureline.ModeForcedTLS}, "subject_tag"},
			{"a tag with CRLF is refused", secureline.Settings{Mode: secureline.ModeForcedTLS, SubjectTag: "[s]\r\nBcc: x"}, "subject_tag"},
		}
		for _, tt := range tests {
			err := svc.SetSettings(context.Background(), f.a, tt.st)
			var fe *secureline.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, secureline.ErrInvalid) {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
		if st, _ := svc.Settings(context.Background(), f.a.Principal.AccountID); st != secureline.DefaultSettings {
			t.Fatalf("a refused change was stored: %+v", st)
		}
	})
}

func TestRecordedDecisionShowsInTheMessageStatus(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newFixture(t, s)
		acc := f.a.Principal.AccountID
		now := store.Micros(time.Now())
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.Writer().Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		exec(`INSERT INTO messages (id, account_id, actor_kind, actor_id, from_addr, from_domain, header_id, kind, tags, metadata,
			options, body_sealed, size, smtputf8, send_at, created_at) VALUES ('m1', $1, 'system', 'test', 'a@clinic.example', 'clinic.example',
			'm1', 'transactional', '[]', '{}', '{}', $2, 10, FALSE, $3, $3)`, acc, []byte("sealed"), now)
		for i, addr := range []string{"p0@patient.example", "p1@patient.example"} {
			exec(`INSERT INTO message_recipients (message_id, rcpt_index, account_id, address, domain, kind, state, priority,
				next_attempt_at, expires_at, updated_at) VALUES ('m1', $1, $2, $3, 'patient.example', 'to', 'queued', 1, $4, $4, $4)`, i, acc, addr, now)
		}
		d := secureline.Decision{Method: secureline.MethodPortal, Reasons: []string{"the account's mode is forced TLS", "no verified TLS"}}
		if err := s.InTx(ctx, func(tx store.Tx) error { return secureline.RecordTx(ctx, tx, acc, "m1", 1, d) }); err != nil {
			t.Fatal(err)
		}
		// Another account cannot record on this account's message.
		err := s.InTx(ctx, func(tx store.Tx) error { return secureline.RecordTx(ctx, tx, f.b.Principal.AccountID, "m1", 0, d) })
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("cross-account record: %v", err)
		}
		m, err := messages.New(s, nil, nil, nil, messages.Options{}).Get(ctx, acc, "m1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Recipients[0].Encryption != nil {
			t.Fatalf("undecided recipient shows %+v", m.Recipients[0].Encryption)
		}
		e := m.Recipients[1].Encryption
		if e == nil || e.Method != "portal" || len(e.Reasons) != 2 || e.Reasons[1] != "no verified TLS" {
			t.Fatalf("recipient 1 encryption %+v", e)
		}
	})
}

// keys is a KeyFinder holding what the test gives it.
type keys struct {
	pgp   map[string]*pgpmime.PublicKey
	smime map[string]*smime.Recipient
}

func (k keys) RecipientPGP(_ context.Context, _, address string) (*pgpmime.PublicKey, error) {
	return k.pgp[address], nil
}

func (k keys) RecipientSMIME(_ context.Context, _, address string) (*smime.Recipient, error) {
	return k.smime[address], nil
}

func TestPreflightDecidesPerRecipientAndCachesTLSPerDomain(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newFixture(t, s)
		var probes atomic.Int32
		prober := secureline.TLSProberFunc(func(_ context.Context, domain string) (secureline.TLSResult, error) {
			probes.Add(1)
			if domain == "verified.example" {
				return secureline.TLSResult{Verified: true, Detail: "STARTTLS verified for mx.verified.example"}, nil
			}
			return secureline.TLSResult{Detail: "mx." + domain + " does not offer STARTTLS"}, nil
		})
		scanner, err := dlp.New(dlp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		expired := &pgpmime.PublicKey{Expires: time.Now().Add(-time.Hour)}
		svc := secureline.New(s, secureline.Options{TLS: prober, Scanner: scanner,
			Keys: keys{pgp: map[string]*pgpmime.PublicKey{"key@plain.example": {}, "old@plain.example": expired}}})
		rcpts := []secureline.Recipient{{"a@verified.example", "verified.example"}, {"b@verified.example", "verified.example"},
			{"c@plain.example", "plain.example"}, {"key@plain.example", "plain.example"}, {"old@plain.example", "plain.example"}}
		res, err := svc.Preflight(ctx, f.a.Principal.AccountID, secureline.PreflightRequest{Recipients: rcpts})
		if err != nil {
			t.Fatal(err)
		}
		want := []secureline.Method{secureline.MethodTLS, secureline.MethodTLS, secureline.MethodPortal, secureline.MethodPGP, secureline.MethodPortal}
		for i, r := range res.Recipients {
			if r.Method != want[i] || r.Address != rcpts[i].Address {
				t.Errorf("recipient %d: %+v, want %s", i, r, want[i])
			}
		}
		if !res.ContainsPHI || res.Mode != secureline.ModeForcedTLS {
			t.Errorf("no content given must count as PHI under the default mode: %+v", res)
		}
		if n := probes.Load(); n != 2 {
			t.Errorf("probed %d times, want once per domain", n)
		}

		// Opportunistic mode: clean content goes opportunistically, PHI
		// content is forced, the tag raises to end-to-end.
		if err := svc.SetSettings(ctx, f.a, secureline.Settings{Mode: secureline.ModeOpportunistic, SubjectTag: "[secure]"}); err != nil {
			t.Fatal(err)
		}
		plain := []secureline.Recipient{{"c@plain.example", "plain.example"}}
		clean := &dlp.Message{Subject: "Your appointment", Text: "See you tomorrow at 9:00."}
		phi := &dlp.Message{Subject: "Results", Text: "Patient SSN 123-45-6789, diagnosis E11.9 (type 2 diabetes)."}
		cases := []struct {
			name    string
			req     secureline.PreflightRequest
			want    secureline.Method
			wantPHI bool
		}{
			{"clean content scans clean: opportunistic TLS", secureline.PreflightRequest{Recipients: plain, Content: clean}, secureline.MethodOpportunisticTLS, false},
			{"PHI content scans as PHI: portal", secureline.PreflightRequest{Recipients: plain, Content: phi}, secureline.MethodPortal, true},
			{"the sender's contains_phi false does not beat the scan", secureline.PreflightRequest{Recipients: plain, Content: phi, ContainsPHI: ptr(false)}, secureline.MethodPortal, true},
			{"the sender's contains_phi true counts", secureline.PreflightRequest{Recipients: plain, Content: clean, ContainsPHI: ptr(true)}, secureline.MethodPortal, true},
			{"contains_phi false alone counts", secureline.PreflightRequest{Recipients: plain, ContainsPHI: ptr(false)}, secureline.MethodOpportunisticTLS, false},
			{"the subject tag raises to end-to-end", secureline.PreflightRequest{Recipients: []secureline.Recipient{{"a@verified.example", "verified.example"}},
				ContainsPHI: ptr(false), Subject: "[SECURE] hello"}, secureline.MethodPortal, false},
			{"a pin the recipient cannot receive is refused", secureline.PreflightRequest{Recipients: plain, ContainsPHI: ptr(false), Pin: "smime"}, secureline.MethodRefused, false},
		}
		for _, c := range cases {
			res, err := svc.Preflight(ctx, f.a.Principal.AccountID, c.req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := res.Recipients[0].Method; got != c.want || res.ContainsPHI != c.wantPHI {
				t.Errorf("%s: %s (phi %v: %s) %q", c.name, got, res.ContainsPHI, res.PHIReason, res.Recipients[0].Reasons)
			}
		}
		if n := probes.Load(); n != 2 {
			t.Errorf("probed %d times in all, want the cache to answer", n)
		}
		// The other account keeps its own (default) mode.
		res, err = svc.Preflight(ctx, f.b.Principal.AccountID, secureline.PreflightRequest{Recipients: plain, Content: clean})
		if err != nil || res.Mode != secureline.ModeForcedTLS || res.Recipients[0].Method != secureline.MethodPortal {
			t.Fatalf("other account: %+v %v", res, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

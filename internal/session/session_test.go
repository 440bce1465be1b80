package session_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/session"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
	"github.com/sealpost/sealpost/pkg/sealpostclient"
)

type fixture struct {
	s        *store.Store
	m        *session.Manager
	admin    *account.Admin
	owner    account.Actor
	clock    *time.Time
	accounts *account.Store
}

func setup(t *testing.T, s *store.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	accts := account.NewStore(s)
	log := audit.New(s, audit.Options{})
	creds, _, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: "A", OwnerEmail: "a@a.example"})
	if err != nil {
		t.Fatal(err)
	}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f := &fixture{s: s, clock: &clock, accounts: accts, admin: account.NewAdmin(s, accts, log)}
	f.m = session.New(s, vault.New(s, mk, vault.Options{}), log, session.Options{Now: func() time.Time { return *f.clock }})
	c, err := accts.ClientCredential(ctx, creds.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	f.owner = account.Actor{Principal: auth.Principal{AccountID: c.AccountID, ActorKind: auth.ActorClient, ActorID: c.ID, Role: c.Role, Scopes: c.Scopes}}
	return f
}

func (f *fixture) open(t *testing.T) *sealpostclient.Session {
	t.Helper()
	o, err := f.m.Open(context.Background(), f.owner)
	if err != nil {
		t.Fatal(err)
	}
	return &sealpostclient.Session{ID: o.ID, Secret: []byte(o.Secret), Now: func() time.Time { return *f.clock }}
}

func signed(t *testing.T, sess *sealpostclient.Session, method, target, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if err := sess.Sign(r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignedRequestsVerifyOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		sess := f.open(t)
		r := signed(t, sess, "POST", "https://sealpost.example/v1/things?b=2&a=1&a=0", `{"x":1}`)
		p, err := f.m.Verify(r)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if p.AccountID != f.owner.Principal.AccountID || p.ActorID != f.owner.Principal.ActorID || p.SessionID != sess.ID || !p.Has(auth.ScopeAdmin) {
			t.Fatalf("principal %+v", p)
		}
		if b, _ := io.ReadAll(r.Body); string(b) != `{"x":1}` {
			t.Fatalf("body not restored for the handler: %q", b)
		}
		// The very same request again is a replay.
		replay := httptest.NewRequest("POST", "https://sealpost.example/v1/things?b=2&a=1&a=0", strings.NewReader(`{"x":1}`))
		replay.Header = r.Header.Clone()
		if _, err := f.m.Verify(replay); !refused(err, "replayed nonce") {
			t.Fatalf("replay: %v", err)
		}
	})
}

func refused(err error, reason string) bool {
	var rc *auth.RefusedClient
	return errors.Is(err, auth.ErrBadCredentials) && errors.As(err, &rc) && rc.Reason == reason
}

func TestForgedAndStaleRequestsAreRefused(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		sess := f.open(t)
		base := func() *http.Request {
			return signed(t, sess, "POST", "https://sealpost.example/v1/things?a=1", `{"amount":10}`)
		}
		cases := []struct {
			name   string
			mutate func(r *http.Request) *http.Request
			reason string
		}{
			{"tampered body", func(r *http.Request) *http.Request {
				r.Body = io.NopCloser(strings.NewReader(`{"amount":99}`))
				return r
			}, "bad signature"},
			{"other path", func(r *http.Request) *http.Request { r.URL.Path = "/v1/other"; return r }, "bad signature"},
			{"other query", func(r *http.Request) *http.Request { r.URL.RawQuery = "a=2"; return r }, "bad signature"},
			{"other method", func(r *http.Request) *http.Request { r.Method = "PUT"; return r }, "bad signature"},
			{"other host", func(r *http.Request) *http.Request { r.Host = "evil.example"; return r }, "bad signature"},
			{"other content type", func(r *http.Request) *http.Request { r.Header.Set("Content-Type", "text/plain"); return r }, "bad signature"},
			{"wrong secret", func(r *http.Request) *http.Request {
				forged := &sealpostclient.Session{ID: sess.ID, Secret: []byte("guess"), Now: sess.Now}
				r.Header.Del("Authorization")
				_ = forged.Sign(r)
				return r
			}, "bad signature"},
		}
		for _, c := range cases {
			if _, err := f.m.Verify(c.mutate(base())); !refused(err, c.reason) {
				t.Errorf("%s: got %v, want %q", c.name, err, c.reason)
			}
		}
		// Timestamps outside five minutes, either way.
		for _, d := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
			r := base()
			*f.clock = f.clock.Add(d)
			_, err := f.m.Verify(r)
			*f.clock = f.clock.Add(-d)
			if !refused(err, "stale timestamp") {
				t.Errorf("clock moved %v: %v", d, err)
			}
		}
		malformed := []string{"", "Sealpost-HMAC-SHA256", "Sealpost-HMAC-SHA256 Session=x", "Sealpost-HMAC-SHA256 Session=x, Session=y"}
		for _, h := range malformed {
			r := base()
			r.Header.Set("Authorization", h)
			if _, err := f.m.Verify(r); !errors.Is(err, auth.ErrBadCredentials) {
				t.Errorf("header %q: %v", h, err)
			}
		}
		r := base()
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), sess.ID, "sps_unknown", 1))
		if _, err := f.m.Verify(r); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("unknown session: %v", err)
		}
		// A refused forgery does not burn the nonce of the genuine request.
		genuine := base()
		forged := genuine.Clone(context.Background())
		forged.Body = io.NopCloser(strings.NewReader(`{"amount":99}`))
		if _, err := f.m.Verify(forged); !refused(err, "bad signature") {
			t.Fatal(err)
		}
		if _, err := f.m.Verify(genuine); err != nil {
			t.Fatalf("genuine request after a forgery with its nonce: %v", err)
		}
	})
}

func TestSessionsEnd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s)
		req := func(sess *sealpostclient.Session) error {
			_, err := f.m.Verify(signed(t, sess, "GET", "https://sealpost.example/v1/x", ""))
			return err
		}

		expiring := f.open(t)
		*f.clock = f.clock.Add(session.DefaultTTL + time.Second)
		if err := req(expiring); !refused(err, "session expired") {
			t.Errorf("expired: %v", err)
		}
		*f.clock = f.clock.Add(-session.DefaultTTL - time.Second)

		revoked := f.open(t)
		if err := f.m.Revoke(ctx, f.owner, revoked.ID); err != nil {
			t.Fatal(err)
		}
		if err := req(revoked); !refused(err, "session revoked") {
			t.Errorf("revoked: %v", err)
		}

		a, b := f.open(t), f.open(t)
		n, err := f.m.RevokeClientSessions(ctx, f.owner, f.owner.Principal.ActorID)
		if err != nil || n < 2 {
			t.Fatalf("revoke all: %d %v", n, err)
		}
		for _, sess := range []*sealpostclient.Session{a, b} {
			if err := req(sess); !refused(err, "session revoked") {
				t.Errorf("after revoke-all: %v", err)
			}
		}

		// Rotating or revoking the client ends its sessions.
		c, err := f.admin.CreateClient(ctx, f.owner, account.ClientSpec{Name: "feed", Role: account.RoleSender})
		if err != nil {
			t.Fatal(err)
		}
		feed := account.Actor{Principal: auth.Principal{AccountID: c.AccountID, ActorKind: auth.ActorClient, ActorID: c.ID, Scopes: c.Scopes}}
		o, err := f.m.Open(ctx, feed)
		if err != nil {
			t.Fatal(err)
		}
		feedSess := &sealpostclient.Session{ID: o.ID, Secret: []byte(o.Secret), Now: func() time.Time { return *f.clock }}
		p, err := f.m.Verify(signed(t, feedSess, "GET", "https://sealpost.example/v1/x", ""))
		if err != nil || p.Has(auth.ScopeAdmin) || !p.Has(auth.ScopeMessagesSend) {
			t.Fatalf("sender session: %+v %v", p, err)
		}
		*f.clock = f.clock.Add(time.Second)
		if _, err := f.admin.RotateClient(ctx, f.owner, c.ID); err != nil {
			t.Fatal(err)
		}
		if err := req(feedSess); !refused(err, "client secret rotated") {
			t.Errorf("after rotation: %v", err)
		}

		// Sessions are opened with a client's own credentials only.
		viaSession := f.owner
		viaSession.Principal.SessionID = "sps_x"
		if _, err := f.m.Open(ctx, viaSession); !errors.Is(err, session.ErrNotAClient) {
			t.Errorf("open from a session: %v", err)
		}
		// A sender may not revoke the owner's session; another account cannot see it.
		ownerSess := f.open(t)
		if err := f.m.Revoke(ctx, feed, ownerSess.ID); !errors.Is(err, session.ErrForbidden) {
			t.Errorf("sender revoking owner's session: %v", err)
		}
		stranger := f.owner
		stranger.Principal.AccountID = "another-account"
		if err := f.m.Revoke(ctx, stranger, ownerSess.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-account revoke: %v", err)
		}
		if err := req(ownerSess); err != nil {
			t.Errorf("owner session after refused revokes: %v", err)
		}

		// Sweep removes nonces past the window.
		*f.clock = f.clock.Add(time.Hour)
		if n, err := f.m.Sweep(ctx); err != nil || n == 0 {
			t.Errorf("sweep: %d %v", n, err)
		}
	})
}

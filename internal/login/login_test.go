package login

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/mfa"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

type fixture struct {
	svc   *Service
	mfa   *mfa.Manager
	log   *audit.Log
	db    *store.Store
	creds account.Credentials
	user  User
	clock time.Time
}

func setup(t *testing.T, s *store.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	log := audit.New(s, audit.Options{})
	creds, _, err := account.Bootstrap(ctx, s, account.NewStore(s), log, account.BootstrapOptions{AccountName: "A", OwnerEmail: "owner@a.example"})
	if err != nil {
		t.Fatal(err)
	}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: s, log: log, creds: creds, clock: time.Date(2026, 11, 24, 12, 0, 10, 0, time.UTC)}
	f.mfa = mfa.New(s, vault.New(s, mk, vault.Options{}), "Sealpost")
	f.mfa.Now = func() time.Time { return f.clock }
	f.svc = New(s, f.mfa, log)
	f.svc.Now = func() time.Time { return f.clock }
	f.user, err = f.svc.Password(ctx, f.attempt(creds.OwnerPassword))
	if err != nil {
		t.Fatalf("owner login: %v", err)
	}
	return f
}

func (f *fixture) attempt(password string) Attempt {
	return Attempt{Email: f.creds.OwnerEmail, Password: password, Channel: "console", SourceIP: "192.0.2.1"}
}

func (f *fixture) actions(t *testing.T) map[string]int {
	t.Helper()
	page, err := f.log.List(context.Background(), f.creds.AccountID, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range page.Events {
		out[e.Action+"/"+e.Outcome]++
		if e.Details["channel"] != "" && e.Details["password"] != "" {
			t.Errorf("audit event holds a password")
		}
	}
	return out
}

func TestPasswordRefusalsLookAlike(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		ctx := context.Background()
		cases := []struct {
			name  string
			a     Attempt
			audit bool
		}{
			{"unknown email", Attempt{Email: "nobody@a.example", Password: "x"}, false},
			{"wrong password", f.attempt("wrong"), true},
			{"empty password", f.attempt(""), true},
			{"other account", Attempt{AccountID: "other", Email: f.creds.OwnerEmail, Password: f.creds.OwnerPassword}, false},
			{"sql in email", Attempt{Email: "' OR 1=1 --", Password: "x"}, false},
			{"newline in email", Attempt{Email: "owner@a.example\nBcc: x@y", Password: "x"}, false},
			{"nul in email", Attempt{Email: "owner@a.example\x00", Password: f.creds.OwnerPassword}, false},
			{"display name", Attempt{Email: "Owner <owner@a.example>", Password: f.creds.OwnerPassword}, false},
			{"upper case still matches, wrong password", Attempt{Email: "OWNER@A.EXAMPLE", Password: "nope"}, true},
		}
		for _, tc := range cases {
			_, err := f.svc.Password(ctx, tc.a)
			if !errors.Is(err, ErrFailed) || err.Error() != ErrFailed.Error() {
				t.Errorf("%s: err = %v, want exactly ErrFailed", tc.name, err)
			}
		}
		if got := f.actions(t)["login.failed/failure"]; got != 3 {
			t.Errorf("login.failed events = %d, want 3 (only known users are audited)", got)
		}
	})
}

func TestLockoutProgressesAndAdminUnlocks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		ctx := context.Background()
		for i := 1; i <= FreeAttempts; i++ {
			if _, err := f.svc.Password(ctx, f.attempt("wrong")); !errors.Is(err, ErrFailed) {
				t.Fatal(err)
			}
		}
		// No delay yet: the right password still works.
		if _, err := f.svc.Password(ctx, f.attempt(f.creds.OwnerPassword)); err != nil {
			t.Fatalf("within free attempts: %v", err)
		}
		// The sixth failure imposes a one-second delay: even the right
		// password is refused until it passes, and does not count.
		if _, err := f.svc.Password(ctx, f.attempt("wrong")); !errors.Is(err, ErrFailed) {
			t.Fatal(err)
		}
		if _, err := f.svc.Password(ctx, f.attempt(f.creds.OwnerPassword)); !errors.Is(err, ErrFailed) {
			t.Fatalf("during delay: err = %v, want ErrFailed", err)
		}
		f.clock = f.clock.Add(1100 * time.Millisecond)
		u, err := f.svc.Password(ctx, f.attempt(f.creds.OwnerPassword))
		if err != nil {
			t.Fatalf("after delay: %v", err)
		}
		if err := f.svc.Succeeded(ctx, u, "console", "192.0.2.1", ""); err != nil {
			t.Fatal(err)
		}
		// Success cleared the count; 100 failures (each after its delay)
		// lock the user for good.
		for i := 1; i <= LockAfter; i++ {
			if _, err := f.svc.Password(ctx, f.attempt("wrong")); !errors.Is(err, ErrFailed) {
				t.Fatal(err)
			}
			f.clock = f.clock.Add(MaxDelay + time.Second)
		}
		f.clock = f.clock.Add(365 * 24 * time.Hour)
		if _, err := f.svc.Password(ctx, f.attempt(f.creds.OwnerPassword)); !errors.Is(err, ErrFailed) {
			t.Fatalf("hard lock: err = %v, want ErrFailed", err)
		}
		admin := account.NewAdmin(s, account.NewStore(s), f.log)
		owner := account.Actor{Principal: auth.Principal{AccountID: u.AccountID, ActorKind: auth.ActorUser, ActorID: u.ID,
			Scopes: auth.AllScopes()}}
		users, err := admin.ListUsers(ctx, owner)
		if err != nil || !users[0].Locked {
			t.Fatalf("listed user not shown locked: %+v %v", users, err)
		}
		if _, err := admin.UpdateUser(ctx, owner, u.ID, account.UserChange{Unlock: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Password(ctx, f.attempt(f.creds.OwnerPassword)); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
	})
}

func TestLockSchedule(t *testing.T) {
	now := time.Unix(1000, 0)
	cases := []struct {
		failed int
		want   time.Duration // -1: none, 0: hard lock
	}{
		{1, -1}, {FreeAttempts, -1}, {FreeAttempts + 1, time.Second}, {FreeAttempts + 2, 2 * time.Second},
		{FreeAttempts + 10, 512 * time.Second}, {FreeAttempts + 11, MaxDelay}, {LockAfter - 1, MaxDelay}, {LockAfter, 0}, {LockAfter + 5, 0},
	}
	for _, tc := range cases {
		until, ok := lockFor(tc.failed, now)
		switch {
		case tc.want == -1 && ok:
			t.Errorf("failed=%d: delay imposed, want none", tc.failed)
		case tc.want == 0 && (!ok || until != lockedForever):
			t.Errorf("failed=%d: want hard lock", tc.failed)
		case tc.want > 0 && store.FromMicros(until).Sub(now) != tc.want:
			t.Errorf("failed=%d: delay %v, want %v", tc.failed, store.FromMicros(until).Sub(now), tc.want)
		}
	}
}

func TestSecondFactor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s)
		ctx := context.Background()
		en, err := f.mfa.Enrol(ctx, f.user.AccountID, f.user.ID, f.user.Email)
		if err != nil {
			t.Fatal(err)
		}
		recovery, err := f.mfa.Confirm(ctx, f.user.AccountID, f.user.ID, totpCode(t, en.Secret, f.clock))
		if err != nil {
			t.Fatal(err)
		}
		u, err := f.svc.Password(ctx, f.attempt(f.creds.OwnerPassword))
		if err != nil || !u.MFAEnrolled {
			t.Fatalf("password: %v, enrolled=%v", err, u.MFAEnrolled)
		}
		// The code used to confirm is spent; the next step's code works once.
		if err := f.svc.SecondFactor(ctx, u, totpCode(t, en.Secret, f.clock), "console", "", ""); !errors.Is(err, ErrBadCode) {
			t.Fatalf("reused code: %v", err)
		}
		f.clock = f.clock.Add(30 * time.Second)
		next := totpCode(t, en.Secret, f.clock)
		if err := f.svc.SecondFactor(ctx, u, next, "console", "", ""); err != nil {
			t.Fatalf("fresh code: %v", err)
		}
		if err := f.svc.SecondFactor(ctx, u, next, "console", "", ""); !errors.Is(err, ErrBadCode) {
			t.Fatalf("replayed code: %v", err)
		}
		if err := f.svc.SecondFactor(ctx, u, recovery[0], "console", "", ""); err != nil {
			t.Fatalf("recovery code: %v", err)
		}
		if err := f.svc.SecondFactor(ctx, u, recovery[0], "console", "", ""); !errors.Is(err, ErrBadCode) {
			t.Fatalf("reused recovery code: %v", err)
		}
		got := f.actions(t)
		if got["mfa.verified/success"] != 2 || got["login.failed/failure"] != 3 {
			t.Errorf("audit = %v, want 2 mfa.verified and 3 login.failed", got)
		}
		var failed int
		if err := s.Reader().QueryRow(ctx, "SELECT failed_logins FROM users WHERE id = $1", u.ID).Scan(&failed); err != nil || failed != 3 {
			t.Errorf("failed_logins = %d (%v), want 3: second-factor failures count too", failed, err)
		}
	})
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

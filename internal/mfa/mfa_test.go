package mfa_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/mfa"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

type fixture struct {
	m         *mfa.Manager
	clock     time.Time
	accountID string
	userID    string
}

func setup(t *testing.T, s *store.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	accts := account.NewStore(s)
	creds, _, err := account.Bootstrap(ctx, s, accts, audit.New(s, audit.Options{}), account.BootstrapOptions{AccountName: "A", OwnerEmail: "a@a.example"})
	if err != nil {
		t.Fatal(err)
	}
	var userID string
	if err := s.Reader().QueryRow(ctx, "SELECT id FROM users WHERE account_id = $1", creds.AccountID).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: time.Date(2026, 11, 24, 12, 0, 10, 0, time.UTC), accountID: creds.AccountID, userID: userID}
	f.m = mfa.New(s, vault.New(s, mk, vault.Options{}), "Sealpost")
	f.m.Now = func() time.Time { return f.clock }
	return f
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTPCodesWorkOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s)
		if err := f.m.Verify(ctx, f.accountID, f.userID, "123456"); !errors.Is(err, mfa.ErrNotEnrolled) {
			t.Fatalf("before enrolment: %v", err)
		}
		e, err := f.m.Enrol(ctx, f.accountID, f.userID, "a@a.example")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.URL, "otpauth://totp/Sealpost:") || !bytes.HasPrefix(e.QRPNG, []byte("\x89PNG")) {
			t.Fatalf("enrolment: %s", e.URL)
		}
		if err := f.m.Verify(ctx, f.accountID, f.userID, code(t, e.Secret, f.clock)); !errors.Is(err, mfa.ErrNotEnrolled) {
			t.Fatalf("verify before confirmation: %v", err)
		}
		recovery, err := f.m.Confirm(ctx, f.accountID, f.userID, code(t, e.Secret, f.clock))
		if err != nil || len(recovery) != mfa.RecoveryCodes {
			t.Fatalf("confirm: %v", err)
		}
		if _, err := f.m.Enrol(ctx, f.accountID, f.userID, "a@a.example"); !errors.Is(err, mfa.ErrAlreadyReady) {
			t.Fatalf("re-enrol over a confirmed factor: %v", err)
		}
		// The confirming code's step is used up.
		if err := f.m.Verify(ctx, f.accountID, f.userID, code(t, e.Secret, f.clock)); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("confirmation code reused: %v", err)
		}
		f.clock = f.clock.Add(30 * time.Second)
		cases := []struct {
			name string
			code string
			want error
		}{
			{"future step", code(t, e.Secret, f.clock.Add(30*time.Second)), mfa.ErrInvalidCode},
			{"wrong code", "000000", mfa.ErrInvalidCode},
			{"garbage", "12a4\x0056", mfa.ErrInvalidCode},
			{"current step", code(t, e.Secret, f.clock), nil},
			{"same code again", code(t, e.Secret, f.clock), mfa.ErrInvalidCode},
			{"earlier step", code(t, e.Secret, f.clock.Add(-30*time.Second)), mfa.ErrInvalidCode},
		}
		for _, c := range cases {
			if err := f.m.Verify(ctx, f.accountID, f.userID, c.code); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
				t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			}
		}
		// A code typed as the period turned (previous step) is accepted
		// once if no later step was used yet.
		f.clock = f.clock.Add(60 * time.Second)
		if err := f.m.Verify(ctx, f.accountID, f.userID, code(t, e.Secret, f.clock.Add(-30*time.Second))); err != nil {
			t.Errorf("previous step within skew: %v", err)
		}

		// Recovery codes are single use.
		if err := f.m.UseRecoveryCode(ctx, f.accountID, f.userID, strings.ToLower(recovery[0])); err != nil {
			t.Fatalf("recovery code: %v", err)
		}
		if err := f.m.UseRecoveryCode(ctx, f.accountID, f.userID, recovery[0]); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("reused recovery code: %v", err)
		}
		if err := f.m.UseRecoveryCode(ctx, "another-account", f.userID, recovery[1]); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("recovery code across accounts: %v", err)
		}
	})
}

func TestSimultaneousSubmissionsOfOneCodeSucceedOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s)
		e, err := f.m.Enrol(ctx, f.accountID, f.userID, "a@a.example")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Confirm(ctx, f.accountID, f.userID, code(t, e.Secret, f.clock)); err != nil {
			t.Fatal(err)
		}
		f.clock = f.clock.Add(30 * time.Second)
		c := code(t, e.Secret, f.clock)
		const n = 8
		var wg sync.WaitGroup
		results := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = f.m.Verify(ctx, f.accountID, f.userID, c)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, mfa.ErrInvalidCode):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d simultaneous submissions succeeded, want exactly 1", ok, n)
		}
	})
}

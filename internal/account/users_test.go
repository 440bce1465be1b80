package account_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func TestUserAdministration(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := twoTenants(t, s)
		accts, log, admin, a, ownerA, ownerB := f.accts, f.log, f.admin, f.a, f.ownerA, f.ownerB

		u, err := admin.CreateUser(ctx, ownerA, "nurse@a.example", account.RoleSender)
		if err != nil || u.Password == "" || u.Role != account.RoleSender {
			t.Fatalf("create: %+v %v", u, err)
		}
		var hash string
		if err := s.Reader().QueryRow(ctx, "SELECT password_hash FROM users WHERE id = $1", u.ID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if ok, _ := auth.VerifyPassword(hash, u.Password); !ok {
			t.Fatal("initial password does not verify")
		}
		if _, err := admin.CreateUser(ctx, ownerA, "nurse@a.example", account.RoleSender); !errors.Is(err, account.ErrEmailTaken) {
			t.Errorf("duplicate email: %v", err)
		}

		changed, err := admin.UpdateUser(ctx, ownerA, u.ID, account.UserChange{Role: ptr(account.RoleMarketer), Disabled: ptr(true)})
		if err != nil || changed.Role != account.RoleMarketer || !changed.Disabled {
			t.Fatalf("update: %+v %v", changed, err)
		}
		if _, err := admin.UpdateUser(ctx, ownerB, u.ID, account.UserChange{Disabled: ptr(false)}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-account update: %v", err)
		}
		if users, _ := admin.ListUsers(ctx, ownerB); len(users) != 1 {
			t.Errorf("account B lists %d users, want only its owner", len(users))
		}

		// The last active owner can be neither demoted nor disabled.
		users, _ := admin.ListUsers(ctx, ownerA)
		var owner account.User
		for _, x := range users {
			if x.Role == account.RoleOwner {
				owner = x
			}
		}
		if _, err := admin.UpdateUser(ctx, ownerA, owner.ID, account.UserChange{Role: ptr(account.RoleAdmin)}); !errors.Is(err, account.ErrLastOwner) {
			t.Errorf("demote last owner: %v", err)
		}
		if _, err := admin.UpdateUser(ctx, ownerA, owner.ID, account.UserChange{Disabled: ptr(true)}); !errors.Is(err, account.ErrLastOwner) {
			t.Errorf("disable last owner: %v", err)
		}
		if got, _ := accts.GetUser(ctx, a.AccountID, owner.ID); got.Role != account.RoleOwner || got.Disabled {
			t.Errorf("refused change was applied: %+v", got)
		}

		// No escalation: a narrowed admin cannot create or promote to owner.
		narrow := ownerA
		narrow.Principal.Scopes = []string{auth.ScopeAdmin, auth.ScopeAuditRead}
		if _, err := admin.CreateUser(ctx, narrow, "x@a.example", account.RoleSender); !errors.Is(err, account.ErrEscalation) {
			t.Errorf("escalating create: %v", err)
		}
		if _, err := admin.UpdateUser(ctx, narrow, u.ID, account.UserChange{Role: ptr(account.RoleOwner)}); !errors.Is(err, account.ErrEscalation) {
			t.Errorf("escalating promote: %v", err)
		}
		if _, err := admin.CreateUser(ctx, ownerA, "Bad <x@a.example>", account.RoleSender); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("bad email: %v", err)
		}

		page, _ := log.List(ctx, a.AccountID, audit.Query{Action: "user.updated"})
		if len(page.Events) != 1 || page.Events[0].Details["role"] != "sender->marketer" || page.Events[0].Details["disabled"] != "true" {
			t.Errorf("audit of the update: %+v", page.Events)
		}
	})
}

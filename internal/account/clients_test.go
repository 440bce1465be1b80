package account_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestAdminManagesClientsWithinItsAccountAndScopes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := twoTenants(t, s)
		accts, log, admin, a, ownerB := f.accts, f.log, f.admin, f.a, f.ownerB
		ownerA := f.ownerA
		ownerA.SourceIP, ownerA.RequestID = "192.0.2.7", "req-1"

		c, err := admin.CreateClient(ctx, ownerA, account.ClientSpec{Name: "ehr", Role: account.RoleSender})
		if err != nil || c.Secret == "" || c.AccountID != a.AccountID {
			t.Fatalf("create: %+v %v", c, err)
		}
		rotated, err := admin.RotateClient(ctx, ownerA, c.ID)
		if err != nil || rotated.Secret == c.Secret {
			t.Fatalf("rotate: %v", err)
		}
		cred, _ := accts.ClientCredential(ctx, c.ID)
		if auth.SecretMatches(cred.SecretHash, c.Secret) || !auth.SecretMatches(cred.SecretHash, rotated.Secret) {
			t.Fatal("rotation did not replace the secret")
		}

		// Account B cannot see, rotate or revoke A's client.
		if _, err := admin.RotateClient(ctx, ownerB, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-account rotate: %v", err)
		}
		if err := admin.RevokeClient(ctx, ownerB, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-account revoke: %v", err)
		}
		listB, _ := admin.ListClients(ctx, ownerB)
		for _, x := range listB {
			if x.ID == c.ID {
				t.Error("B lists A's client")
			}
		}

		// Nobody grants more than they hold.
		narrow := ownerA
		narrow.Principal.Scopes = []string{auth.ScopeAdmin, auth.ScopeAuditRead}
		if _, err := admin.CreateClient(ctx, narrow, account.ClientSpec{Name: "mint", Role: account.RoleSender}); !errors.Is(err, account.ErrEscalation) {
			t.Errorf("escalating create: %v", err)
		}
		if _, err := admin.RotateClient(ctx, narrow, c.ID); !errors.Is(err, account.ErrEscalation) {
			t.Errorf("escalating rotate: %v", err)
		}

		if err := admin.RevokeClient(ctx, ownerA, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.RotateClient(ctx, ownerA, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotating a revoked client: %v", err)
		}

		page, err := log.List(ctx, a.AccountID, audit.Query{ActorID: a.ClientID})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range page.Events {
			if e.SourceIP != "192.0.2.7" || e.RequestID != "req-1" || e.Target != "client/"+c.ID {
				t.Errorf("event %s lacks actor context: %+v", e.Action, e)
			}
			got = append(got, e.Action)
		}
		if want := []string{"client.created", "client.rotated", "client.revoked"}; !slices.Equal(got, want) {
			t.Errorf("audit %v, want %v", got, want)
		}
	})
}

func principal(t *testing.T, accts *account.Store, clientID string) auth.Principal {
	t.Helper()
	c, err := accts.ClientCredential(context.Background(), clientID)
	if err != nil {
		t.Fatal(err)
	}
	return auth.Principal{AccountID: c.AccountID, ActorKind: auth.ActorClient, ActorID: c.ID, Role: c.Role, Scopes: c.Scopes}
}

package account_test

import (
	"context"
	"testing"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
)

// tenants is two bootstrapped accounts, A and B, and the services over them.
type tenants struct {
	accts *account.Store
	log   *audit.Log
	admin *account.Admin
	a, b  account.Credentials
	// ownerA and ownerB act as each account's bootstrap owner client.
	ownerA, ownerB account.Actor
}

func twoTenants(t *testing.T, s *store.Store) tenants {
	t.Helper()
	ctx := context.Background()
	f := tenants{accts: account.NewStore(s), log: audit.New(s, audit.Options{})}
	f.admin = account.NewAdmin(s, f.accts, f.log)
	var err error
	if f.a, _, err = account.Bootstrap(ctx, s, f.accts, f.log, account.BootstrapOptions{AccountName: "A", OwnerEmail: "owner@a.example"}); err != nil {
		t.Fatal(err)
	}
	if f.b, _, err = account.Bootstrap(ctx, s, f.accts, f.log, account.BootstrapOptions{AccountName: "B", OwnerEmail: "owner@b.example", Force: true}); err != nil {
		t.Fatal(err)
	}
	f.ownerA = account.Actor{Principal: principal(t, f.accts, f.a.ClientID)}
	f.ownerB = account.Actor{Principal: principal(t, f.accts, f.b.ClientID)}
	return f
}

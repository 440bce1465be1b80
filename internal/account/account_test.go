package account_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestBootstrapCreatesOneAccountOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		accts := account.NewStore(s)
		log := audit.New(s, audit.Options{})
		opts := account.BootstrapOptions{AccountName: "Clinic", OwnerEmail: "owner@clinic.example"}

		// Several nodes starting at once create exactly one account.
		var wg sync.WaitGroup
		results := make([]bool, 4)
		errs := make([]error, 4)
		creds := make([]account.Credentials, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				creds[i], results[i], errs[i] = account.Bootstrap(ctx, s, accts, log, opts)
			}()
		}
		wg.Wait()
		created := 0
		var c account.Credentials
		for i := range results {
			if errs[i] != nil {
				t.Fatalf("bootstrap %d: %v", i, errs[i])
			}
			if results[i] {
				created++
				c = creds[i]
			}
		}
		if created != 1 {
			t.Fatalf("%d bootstraps created an account, want 1", created)
		}
		if n, _ := accts.CountAccounts(ctx, s.Reader()); n != 1 {
			t.Fatalf("%d accounts", n)
		}

		var out strings.Builder
		_, _ = c.WriteTo(&out)
		for _, want := range []string{"owner_email: owner@clinic.example\n", "owner_password: " + c.OwnerPassword, "client_id: " + c.ClientID, "client_secret: " + c.ClientSecret} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("printed credentials lack %q", want)
			}
		}

		// The stored password is an argon2id hash that verifies; the secret is not stored.
		var hash string
		if err := s.Reader().QueryRow(ctx, "SELECT password_hash FROM users WHERE account_id = $1", c.AccountID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if ok, err := auth.VerifyPassword(hash, c.OwnerPassword); !ok || err != nil {
			t.Fatalf("owner password does not verify: %v", err)
		}
		cred, err := accts.ClientCredential(ctx, c.ClientID)
		if err != nil || !auth.SecretMatches(cred.SecretHash, c.ClientSecret) || cred.AccountID != c.AccountID {
			t.Fatalf("client credential: %+v %v", cred, err)
		}
		if strings.Contains(string(cred.SecretHash), c.ClientSecret) {
			t.Fatal("secret stored in clear")
		}

		page, err := log.List(ctx, c.AccountID, audit.Query{})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range page.Events {
			actions = append(actions, e.Action)
		}
		if strings.Join(actions, ",") != "account.created,user.created,client.created" {
			t.Fatalf("audit trail %v", actions)
		}

		// --force adds a second, independent account.
		c2, created2, err := account.Bootstrap(ctx, s, accts, log, account.BootstrapOptions{AccountName: "Second", OwnerEmail: "owner@second.example", Force: true})
		if err != nil || !created2 || c2.AccountID == c.AccountID {
			t.Fatalf("forced bootstrap: %v %v", created2, err)
		}
	})
}

func TestAccountQueriesAreScopedByAccount(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		accts := account.NewStore(s)
		var a, b account.Account
		var clientA string
		var userA account.User
		err := s.InTx(ctx, func(tx store.Tx) error {
			var err error
			if a, err = accts.CreateAccount(ctx, tx, "A"); err != nil {
				return err
			}
			if b, err = accts.CreateAccount(ctx, tx, "B"); err != nil {
				return err
			}
			if userA, err = accts.CreateUser(ctx, tx, a.ID, "a@a.example", "$argon2id$x", account.RoleAdmin); err != nil {
				return err
			}
			id, _, hash, _ := auth.NewClientCredentials()
			clientA = id
			_, err = accts.CreateClient(ctx, tx, a.ID, account.ClientSpec{Name: "a-client", Role: account.RoleSender}, id, hash)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := accts.GetUser(ctx, b.ID, userA.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account B read A's user: %v", err)
		}
		if cs, err := accts.ListClients(ctx, b.ID); err != nil || len(cs) != 0 {
			t.Errorf("account B lists %d clients (%v)", len(cs), err)
		}
		err = s.InTx(ctx, func(tx store.Tx) error { return accts.RevokeClient(ctx, tx, b.ID, clientA) })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("account B revoked A's client: %v", err)
		}
		if cs, _ := accts.ListClients(ctx, a.ID); len(cs) != 1 || !cs[0].RevokedAt.IsZero() {
			t.Errorf("A's client changed: %+v", cs)
		}
	})
}

func TestInvalidPrincipalsAreRefused(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		accts := account.NewStore(s)
		var acct account.Account
		if err := s.InTx(ctx, func(tx store.Tx) error {
			var err error
			acct, err = accts.CreateAccount(ctx, tx, "A")
			if err != nil {
				return err
			}
			_, err = accts.CreateUser(ctx, tx, acct.ID, "dup@a.example", "h", account.RoleAdmin)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			fn   func(tx store.Tx) error
			want error
		}{
			{"empty account name", func(tx store.Tx) error { _, err := accts.CreateAccount(ctx, tx, "  "); return err }, account.ErrInvalid},
			{"display-name email", func(tx store.Tx) error {
				_, err := accts.CreateUser(ctx, tx, acct.ID, "Bob <bob@a.example>", "h", account.RoleAdmin)
				return err
			}, account.ErrInvalid},
			{"header injection in email", func(tx store.Tx) error {
				_, err := accts.CreateUser(ctx, tx, acct.ID, "bob@a.example\r\nBcc: x@y.example", "h", account.RoleAdmin)
				return err
			}, account.ErrInvalid},
			{"unknown role", func(tx store.Tx) error {
				_, err := accts.CreateUser(ctx, tx, acct.ID, "r@a.example", "h", "superuser")
				return err
			}, account.ErrInvalid},
			{"duplicate email", func(tx store.Tx) error {
				_, err := accts.CreateUser(ctx, tx, acct.ID, "dup@a.example", "h", account.RoleAdmin)
				return err
			}, account.ErrEmailTaken},
			{"client scope wider than role", func(tx store.Tx) error {
				id, _, h, _ := auth.NewClientCredentials()
				_, err := accts.CreateClient(ctx, tx, acct.ID, account.ClientSpec{Name: "c", Role: account.RoleAuditor, Scopes: []string{auth.ScopeMessagesSend}}, id, h)
				return err
			}, account.ErrScopeTooWide},
		}
		for _, c := range cases {
			err := s.InTx(ctx, c.fn)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			}
		}
	})
}

package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestAuthenticateAPIKeyAndBasic(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		accts := account.NewStore(s)
		id, secret, hash, err := auth.NewClientCredentials()
		if err != nil {
			t.Fatal(err)
		}
		var acctID string
		err = s.InTx(ctx, func(tx store.Tx) error {
			a, err := accts.CreateAccount(ctx, tx, "Clinic")
			if err != nil {
				return err
			}
			acctID = a.ID
			_, err = accts.CreateClient(ctx, tx, a.ID, account.ClientSpec{Name: "ehr", Role: account.RoleSender}, id, hash)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		a := &auth.Authenticator{Clients: accts}
		basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
		cases := []struct {
			name    string
			header  string
			value   string
			wantErr error
		}{
			{"api key", "X-API-Key", id + ":" + secret, nil},
			{"basic", "Authorization", basic(id, secret), nil},
			{"no credentials", "", "", auth.ErrNoCredentials},
			{"wrong secret", "X-API-Key", id + ":" + secret + "x", auth.ErrBadCredentials},
			{"unknown client", "X-API-Key", "spc_nobody:" + secret, auth.ErrBadCredentials},
			{"missing separator", "X-API-Key", id + secret, auth.ErrBadCredentials},
			{"basic wrong secret", "Authorization", basic(id, "nope"), auth.ErrBadCredentials},
			{"basic not base64", "Authorization", "Basic %%%", auth.ErrBadCredentials},
			{"unsupported scheme", "Authorization", "Digest abc", auth.ErrBadCredentials},
		}
		for _, c := range cases {
			r := httptest.NewRequest("GET", "/v1/audit-events", nil)
			if c.header != "" {
				r.Header.Set(c.header, c.value)
			}
			p, err := a.Authenticate(r)
			if !errors.Is(err, c.wantErr) {
				t.Errorf("%s: got %v, want %v", c.name, err, c.wantErr)
				continue
			}
			if c.wantErr == nil && (p.AccountID != acctID || p.ActorID != id || p.Role != account.RoleSender || !p.Has(auth.ScopeMessagesSend) || p.Has(auth.ScopeAuditRead)) {
				t.Errorf("%s: principal %+v", c.name, p)
			}
		}

		// Revocation takes effect on the next request.
		if err := s.InTx(ctx, func(tx store.Tx) error { return accts.RevokeClient(ctx, tx, acctID, id) }); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/v1/audit-events", nil)
		r.Header.Set("X-API-Key", id+":"+secret)
		if _, err := a.Authenticate(r); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("revoked client: got %v", err)
		}
	})
}

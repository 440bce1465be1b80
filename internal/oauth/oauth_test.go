package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/oauth"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

func TestTokensAreIssuedVerifiedRevokedAndStoredHashed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
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
		srv, err := oauth.New(ctx, oauth.Deps{DB: s, Master: mk, Clients: accts, Policies: accts, Audit: log})
		if err != nil {
			t.Fatal(err)
		}
		// A second node over the same store shares the token key.
		node2, err := oauth.New(ctx, oauth.Deps{DB: s, Master: mk, Clients: accts, Policies: accts, Audit: log})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /oauth2/token", srv.Token)
		mux.HandleFunc("POST /oauth2/revoke", srv.Revoke)
		ts := httptest.NewServer(mux)
		defer ts.Close()

		cc := clientcredentials.Config{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, TokenURL: ts.URL + "/oauth2/token",
			Scopes: []string{auth.ScopeAuditRead}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bearer := func(v *oauth.Server) (auth.Principal, error) {
			r := httptest.NewRequest("GET", "/v1/whoami", nil)
			r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			return v.Verify(r)
		}
		p, err := bearer(node2)
		if err != nil || p.AccountID != creds.AccountID || p.ActorID != creds.ClientID || !p.Has(auth.ScopeAuditRead) || p.Has(auth.ScopeAdmin) {
			t.Fatalf("verify on another node: %+v %v", p, err)
		}
		var stored int
		if err := s.Reader().QueryRow(ctx, "SELECT count(*) FROM oauth_tokens WHERE signature = $1", tok.AccessToken).Scan(&stored); err != nil || stored != 0 {
			t.Fatalf("the token itself is stored (%d, %v)", stored, err)
		}
		var sig string
		if err := s.Reader().QueryRow(ctx, "SELECT signature FROM oauth_tokens").Scan(&sig); err != nil || strings.Contains(tok.AccessToken, sig) == false {
			// fosite tokens are "<key>.<signature>": only the signature part is kept.
			t.Fatalf("stored signature %q is not the token's HMAC part (%v)", sig, err)
		}

		// Revoking the client revokes its tokens from the next request on.
		err = s.InTx(ctx, func(tx store.Tx) error { return accts.RevokeClient(ctx, tx, creds.AccountID, creds.ClientID) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bearer(srv); err == nil {
			t.Fatal("token of a revoked client still verifies")
		}
	})
}

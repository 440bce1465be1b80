package account

import (
	"context"
	"fmt"
	"io"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// Auditor appends audit events inside a caller's transaction.
type Auditor interface {
	AppendTx(ctx context.Context, tx store.Tx, e audit.Event) (audit.Event, error)
}

// BootstrapOptions names what the first account is called.
type BootstrapOptions struct {
	AccountName string
	OwnerEmail  string
	// Force creates a new account even when accounts exist (admin
	// bootstrap --force, e.g. a second tenant).
	Force bool
}

// Credentials are the first-run secrets, shown once.
type Credentials struct {
	AccountID     string
	OwnerEmail    string
	OwnerPassword string
	ClientID      string
	ClientSecret  string
}

// WriteTo prints the credentials in the documented line format that
// operators and scripts read.
func (c Credentials) WriteTo(w io.Writer) (int64, error) {
	n, err := fmt.Fprintf(w, "account_id: %s\nowner_email: %s\nowner_password: %s\nclient_id: %s\nclient_secret: %s\n",
		c.AccountID, c.OwnerEmail, c.OwnerPassword, c.ClientID, c.ClientSecret)
	return int64(n), err
}

// Bootstrap creates the first account, its owner user with a generated
// password and an owner API client, and audits each, all in one
// transaction. It does nothing (created=false) when an account already
// exists, unless opts.Force; several nodes starting at once create one.
func Bootstrap(ctx context.Context, db *store.Store, accounts *Store, log Auditor, opts BootstrapOptions) (creds Credentials, created bool, err error) {
	password, err := auth.NewPassword()
	if err != nil {
		return Credentials{}, false, err
	}
	// Hash outside the transaction: argon2id is deliberately slow and the
	// SQLite writer is shared.
	pwHash, err := auth.HashPassword(password)
	if err != nil {
		return Credentials{}, false, err
	}
	clientID, secret, secretHash, err := auth.NewClientCredentials()
	if err != nil {
		return Credentials{}, false, err
	}
	err = db.InTx(ctx, func(tx store.Tx) error {
		if tx.Dialect() == store.Postgres {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7413020002)"); err != nil {
				return fmt.Errorf("lock bootstrap: %w", err)
			}
		}
		n, err := accounts.CountAccounts(ctx, tx)
		if err != nil {
			return err
		}
		if n > 0 && !opts.Force {
			return nil
		}
		acct, err := accounts.CreateAccount(ctx, tx, opts.AccountName)
		if err != nil {
			return err
		}
		user, err := accounts.CreateUser(ctx, tx, acct.ID, opts.OwnerEmail, pwHash, RoleOwner)
		if err != nil {
			return err
		}
		client, err := accounts.CreateClient(ctx, tx, acct.ID, ClientSpec{Name: "bootstrap", Role: RoleOwner}, clientID, secretHash)
		if err != nil {
			return err
		}
		for _, e := range []audit.Event{
			{Action: "account.created", Target: "account/" + acct.ID},
			{Action: "user.created", Target: "user/" + user.ID, Details: map[string]string{"role": RoleOwner}},
			{Action: "client.created", Target: "client/" + client.ID, Details: map[string]string{"role": RoleOwner}},
		} {
			e.AccountID, e.ActorKind, e.ActorID, e.Outcome = acct.ID, string(auth.ActorSystem), "bootstrap", audit.OutcomeSuccess
			if _, err := log.AppendTx(ctx, tx, e); err != nil {
				return fmt.Errorf("audit %s: %w", e.Action, err)
			}
		}
		creds = Credentials{AccountID: acct.ID, OwnerEmail: user.Email, OwnerPassword: password, ClientID: clientID, ClientSecret: secret}
		created = true
		return nil
	})
	if err != nil {
		return Credentials{}, false, fmt.Errorf("bootstrap: %w", err)
	}
	return creds, created, nil
}

package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// ErrEscalation: a principal tried to grant scopes it does not hold.
var ErrEscalation = errors.New("account: cannot grant scopes the caller does not hold")

// Actor is who performs an administrative action and from where; it is
// what the audit event records.
type Actor struct {
	Principal auth.Principal
	SourceIP  string
	RequestID string
}

// Admin runs credential administration: each action validates, writes and
// audits in one transaction, scoped to the actor's account.
type Admin struct {
	db       *store.Store
	accounts *Store
	log      Auditor
}

// NewAdmin returns an Admin.
func NewAdmin(db *store.Store, accounts *Store, log Auditor) *Admin {
	return &Admin{db: db, accounts: accounts, log: log}
}

// NewClient is a created or rotated client with its secret, which is
// shown this once and never stored.
type NewClient struct {
	Client
	Secret string
}

// CreateClient creates an API client in the actor's account. Its scopes
// default to the role's, must lie within the role, and must lie within the
// actor's own scopes: nobody mints a credential stronger than their own.
func (a *Admin) CreateClient(ctx context.Context, actor Actor, spec ClientSpec) (NewClient, error) {
	id, secret, hash, err := auth.NewClientCredentials()
	if err != nil {
		return NewClient{}, err
	}
	var c Client
	err = a.db.InTx(ctx, func(tx store.Tx) error {
		r, err := a.accounts.Role(ctx, tx, spec.Role)
		if err != nil {
			return err
		}
		granted := spec.Scopes
		if len(granted) == 0 {
			granted = r.Scopes
		}
		if err := checkGrant(actor.Principal, granted); err != nil {
			return err
		}
		if c, err = a.accounts.CreateClient(ctx, tx, actor.Principal.AccountID, spec, id, hash); err != nil {
			return err
		}
		return a.audit(ctx, tx, actor, "client.created", "client/"+c.ID, map[string]string{"role": spec.Role,
			"first_party": strconv.FormatBool(spec.FirstParty)})
	})
	if err != nil {
		return NewClient{}, err
	}
	return NewClient{Client: c, Secret: secret}, nil
}

// ListClients lists the actor's account's clients, without secrets.
func (a *Admin) ListClients(ctx context.Context, actor Actor) ([]Client, error) {
	return a.accounts.ListClients(ctx, actor.Principal.AccountID)
}

// RotateClient replaces the client's secret; the old one stops working at
// once. A revoked client cannot be rotated.
func (a *Admin) RotateClient(ctx context.Context, actor Actor, clientID string) (NewClient, error) {
	_, secret, hash, err := auth.NewClientCredentials()
	if err != nil {
		return NewClient{}, err
	}
	var c Client
	err = a.db.InTx(ctx, func(tx store.Tx) error {
		if c, err = a.accounts.clientForUpdate(ctx, tx, actor.Principal.AccountID, clientID); err != nil {
			return err
		}
		if err := checkGrant(actor.Principal, c.Scopes); err != nil {
			return err
		}
		if err := a.accounts.setClientSecret(ctx, tx, actor.Principal.AccountID, clientID, hash); err != nil {
			return err
		}
		return a.audit(ctx, tx, actor, "client.rotated", "client/"+clientID, nil)
	})
	if err != nil {
		return NewClient{}, err
	}
	return NewClient{Client: c, Secret: secret}, nil
}

// RevokeClient revokes the client; it is refused from the next request on.
func (a *Admin) RevokeClient(ctx context.Context, actor Actor, clientID string) error {
	return a.db.InTx(ctx, func(tx store.Tx) error {
		c, err := a.accounts.clientForUpdate(ctx, tx, actor.Principal.AccountID, clientID)
		if err != nil {
			return err
		}
		if err := checkGrant(actor.Principal, c.Scopes); err != nil {
			return err
		}
		if err := a.accounts.RevokeClient(ctx, tx, actor.Principal.AccountID, clientID); err != nil {
			return err
		}
		return a.audit(ctx, tx, actor, "client.revoked", "client/"+clientID, nil)
	})
}

func checkGrant(p auth.Principal, scopes []string) error {
	for _, s := range scopes {
		if !slices.Contains(p.Scopes, s) {
			return fmt.Errorf("%w: %q", ErrEscalation, s)
		}
	}
	return nil
}

func (a *Admin) audit(ctx context.Context, tx store.Tx, actor Actor, action, target string, details map[string]string) error {
	_, err := a.log.AppendTx(ctx, tx, audit.Event{
		AccountID: actor.Principal.AccountID, ActorKind: string(actor.Principal.ActorKind), ActorID: actor.Principal.ActorID,
		Action: action, Target: target, Outcome: audit.OutcomeSuccess,
		SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: details,
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

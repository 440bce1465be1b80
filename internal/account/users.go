package account

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// ErrLastOwner: the change would leave the account without an active owner.
var ErrLastOwner = errors.New("account: the account must keep an active owner")

// NewUser is a created user with the initial password, shown once.
type NewUser struct {
	User
	Password string
}

// CreateUser adds a user to the actor's account with a generated initial
// password (argon2id-hashed at rest). The role must lie within the actor's
// own scopes.
func (a *Admin) CreateUser(ctx context.Context, actor Actor, email, role string) (NewUser, error) {
	password, err := auth.NewPassword()
	if err != nil {
		return NewUser{}, err
	}
	hash, err := auth.HashPassword(password) // outside the transaction: it is slow on purpose
	if err != nil {
		return NewUser{}, err
	}
	var u User
	err = a.db.InTx(ctx, func(tx store.Tx) error {
		r, err := a.accounts.Role(ctx, tx, role)
		if err != nil {
			return err
		}
		if err := checkGrant(actor.Principal, r.Scopes); err != nil {
			return err
		}
		if u, err = a.accounts.CreateUser(ctx, tx, actor.Principal.AccountID, email, hash, role); err != nil {
			return err
		}
		return a.audit(ctx, tx, actor, "user.created", "user/"+u.ID, map[string]string{"role": role})
	})
	if err != nil {
		return NewUser{}, err
	}
	return NewUser{User: u, Password: password}, nil
}

// ListUsers lists the actor's account's users.
func (a *Admin) ListUsers(ctx context.Context, actor Actor) ([]User, error) {
	return a.accounts.ListUsers(ctx, actor.Principal.AccountID)
}

// UserChange is a partial update; nil fields stay as they are.
type UserChange struct {
	Role     *string
	Disabled *bool
	// Unlock clears the user's failed-login count and lifts a lock.
	Unlock bool
}

// UpdateUser changes a user's role or disabled flag, effective on the
// user's next request. Granting (or taking away) a role needs its scopes;
// the last active owner cannot be demoted or disabled.
func (a *Admin) UpdateUser(ctx context.Context, actor Actor, userID string, ch UserChange) (User, error) {
	var u User
	err := a.db.InTx(ctx, func(tx store.Tx) error {
		if tx.Dialect() == store.Postgres {
			// Serialise changes to the account's owners, so two concurrent
			// demotions cannot each count the other as the remaining owner.
			if _, err := tx.Exec(ctx, "SELECT id FROM users WHERE account_id = $1 AND role = $2 FOR UPDATE",
				actor.Principal.AccountID, RoleOwner); err != nil {
				return err
			}
		}
		var err error
		if u, err = a.accounts.userTx(ctx, tx, actor.Principal.AccountID, userID); err != nil {
			return err
		}
		current, err := a.accounts.Role(ctx, tx, u.Role)
		if err != nil {
			return err
		}
		if err := checkGrant(actor.Principal, current.Scopes); err != nil {
			return err
		}
		details := map[string]string{}
		if ch.Role != nil && *ch.Role != u.Role {
			next, err := a.accounts.Role(ctx, tx, *ch.Role)
			if err != nil {
				return err
			}
			if err := checkGrant(actor.Principal, next.Scopes); err != nil {
				return err
			}
			details["role"] = u.Role + "->" + next.Name
			u.Role = next.Name
		}
		if ch.Disabled != nil && *ch.Disabled != u.Disabled {
			details["disabled"] = strconv.FormatBool(*ch.Disabled)
			u.Disabled = *ch.Disabled
		}
		if ch.Unlock {
			if _, err := tx.Exec(ctx, "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE account_id = $1 AND id = $2",
				u.AccountID, u.ID); err != nil {
				return fmt.Errorf("unlock user: %w", err)
			}
			details["unlocked"] = strconv.FormatBool(u.Locked)
			u.Locked = false
		}
		if len(details) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET role = $1, disabled = $2, updated_at = $3 WHERE account_id = $4 AND id = $5",
			u.Role, u.Disabled, store.Micros(time.Now()), u.AccountID, u.ID); err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		var owners int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM users WHERE account_id = $1 AND role = $2 AND disabled = $3",
			u.AccountID, RoleOwner, false).Scan(&owners); err != nil {
			return err
		}
		if owners == 0 {
			return ErrLastOwner // rolls the update back
		}
		return a.audit(ctx, tx, actor, "user.updated", "user/"+u.ID, details)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// ListUsers returns the account's users, oldest first.
func (s *Store) ListUsers(ctx context.Context, accountID string) ([]User, error) {
	rows, err := s.db.Reader().Query(ctx, "SELECT "+userColumns+" FROM users WHERE account_id = $1 ORDER BY created_at, id", accountID)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows, s.now())
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *Store) userTx(ctx context.Context, tx store.Tx, accountID, id string) (User, error) {
	u, err := scanUser(tx.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE account_id = $1 AND id = $2", accountID, id), s.now())
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", id, err)
	}
	return u, nil
}

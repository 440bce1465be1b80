// Package account owns tenants and their principals: accounts, users,
// API clients and the roles that bound their scopes. Every query on tenant
// data takes the account id explicitly; the only cross-account lookups are
// the two a credential needs before it knows its account (a client id, a
// login email), and those return the owning account.
package account

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/store"
)

// Roles known to the platform, seeded by the foundation migration.
const (
	RoleOwner    = "owner"
	RoleAdmin    = "admin"
	RoleSender   = "sender"
	RoleMarketer = "marketer"
	RoleAuditor  = "auditor"
)

// Account statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// Errors callers branch on.
var (
	ErrNotFound     = store.ErrNotFound
	ErrInvalid      = errors.New("account: invalid input")
	ErrEmailTaken   = errors.New("account: email already registered")
	ErrScopeTooWide = errors.New("account: scopes exceed the role")
)

// Account is a tenant.
type Account struct {
	ID        string
	Name      string
	Status    string
	CreatedAt time.Time
}

// User is a person who logs in to the console.
type User struct {
	ID        string
	AccountID string
	Email     string
	Role      string
	Disabled  bool
	// Locked: too many failed logins; the user waits out a delay or, after
	// 100, until an administrator unlocks them.
	Locked bool
	// MFAEnabled: the user has a confirmed TOTP enrolment.
	MFAEnabled bool
	CreatedAt  time.Time
}

// userColumns and scanUser read a User; every user query selects these.
const userColumns = `id, account_id, email, role, disabled, created_at, COALESCE(locked_until, 0), COALESCE(totp_confirmed_at, 0)`

func scanUser(row interface{ Scan(...any) error }, now time.Time) (User, error) {
	var u User
	var created, lockedUntil, mfaAt int64
	if err := row.Scan(&u.ID, &u.AccountID, &u.Email, &u.Role, &u.Disabled, &created, &lockedUntil, &mfaAt); err != nil {
		return User{}, err
	}
	u.CreatedAt, u.Locked, u.MFAEnabled = store.FromMicros(created), lockedUntil > store.Micros(now), mfaAt != 0
	return u, nil
}

// Client is an API client (a machine credential).
type Client struct {
	ID        string
	AccountID string
	Name      string
	Role      string
	Scopes    []string
	// FirstParty marks the organisation's own applications (the only
	// clients the password grant serves).
	FirstParty bool
	CreatedAt  time.Time
	RevokedAt  time.Time
}

// ClientSpec describes an API client to create.
type ClientSpec struct {
	Name string
	Role string
	// Scopes narrow the role's; empty means all of them.
	Scopes     []string
	FirstParty bool
}

// Role is a named set of scopes.
type Role struct {
	Name        string
	Scopes      []string
	Description string
}

// Store holds the account tables' queries.
type Store struct {
	db  *store.Store
	now func() time.Time
}

// NewStore returns a Store over db.
func NewStore(db *store.Store) *Store {
	return &Store{db: db, now: time.Now}
}

// CountAccounts returns how many accounts exist (bootstrap runs at 0).
func (s *Store) CountAccounts(ctx context.Context, q store.Querier) (int, error) {
	var n int
	if err := q.QueryRow(ctx, "SELECT count(*) FROM accounts").Scan(&n); err != nil {
		return 0, fmt.Errorf("count accounts: %w", err)
	}
	return n, nil
}

// CreateAccount inserts a new active account.
func (s *Store) CreateAccount(ctx context.Context, tx store.Tx, name string) (Account, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return Account{}, fmt.Errorf("%w: account name must be 1..200 characters", ErrInvalid)
	}
	a := Account{ID: store.NewID(), Name: name, Status: StatusActive, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if _, err := tx.Exec(ctx, "INSERT INTO accounts (id, name, status, created_at) VALUES ($1, $2, $3, $4)",
		a.ID, a.Name, a.Status, store.Micros(a.CreatedAt)); err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

// GetAccount returns the account with id.
func (s *Store) GetAccount(ctx context.Context, id string) (Account, error) {
	var a Account
	var created int64
	err := s.db.Reader().QueryRow(ctx, "SELECT id, name, status, created_at FROM accounts WHERE id = $1", id).
		Scan(&a.ID, &a.Name, &a.Status, &created)
	if err != nil {
		return Account{}, fmt.Errorf("get account %s: %w", id, err)
	}
	a.CreatedAt = store.FromMicros(created)
	return a, nil
}

// AccountIDs returns every account's id, oldest first.
func (s *Store) AccountIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.Reader().Query(ctx, "SELECT id FROM accounts ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// AccountName returns the name of account id (for the console).
func (s *Store) AccountName(ctx context.Context, id string) (string, error) {
	a, err := s.GetAccount(ctx, id)
	return a.Name, err
}

// Roles returns every role with its scopes.
func (s *Store) Roles(ctx context.Context) ([]Role, error) {
	rows, err := s.db.Reader().Query(ctx, "SELECT name, scopes, description FROM roles ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	defer rows.Close()
	var out []Role
	for rows.Next() {
		var r Role
		var scopes string
		if err := rows.Scan(&r.Name, &scopes, &r.Description); err != nil {
			return nil, err
		}
		r.Scopes = strings.Fields(scopes)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Role returns the named role.
func (s *Store) Role(ctx context.Context, q store.Querier, name string) (Role, error) {
	var r Role
	var scopes string
	if err := q.QueryRow(ctx, "SELECT name, scopes, description FROM roles WHERE name = $1", name).
		Scan(&r.Name, &scopes, &r.Description); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Role{}, fmt.Errorf("%w: unknown role", ErrInvalid)
		}
		return Role{}, fmt.Errorf("get role %s: %w", name, err)
	}
	r.Scopes = strings.Fields(scopes)
	return r, nil
}

// CreateUser inserts a user with an already-hashed password.
func (s *Store) CreateUser(ctx context.Context, tx store.Tx, accountID, email, passwordHash, role string) (User, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email || len(email) > 254 {
		return User{}, fmt.Errorf("%w: email must be a bare address", ErrInvalid)
	}
	if _, err := s.Role(ctx, tx, role); err != nil {
		return User{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	u := User{ID: store.NewID(), AccountID: accountID, Email: strings.ToLower(email), Role: role, CreatedAt: now}
	_, err = tx.Exec(ctx, `INSERT INTO users (id, account_id, email, password_hash, role, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
		u.ID, accountID, u.Email, passwordHash, role, false, store.Micros(now))
	if errors.Is(err, store.ErrConflict) {
		return User{}, ErrEmailTaken
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// GetUser returns the user id of account accountID.
func (s *Store) GetUser(ctx context.Context, accountID, id string) (User, error) {
	u, err := scanUser(s.db.Reader().QueryRow(ctx,
		"SELECT "+userColumns+" FROM users WHERE account_id = $1 AND id = $2", accountID, id), s.now())
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// CreateClient inserts an API client. Scopes default to the role's and may
// only narrow them.
func (s *Store) CreateClient(ctx context.Context, tx store.Tx, accountID string, spec ClientSpec, id string, secretHash []byte) (Client, error) {
	name, role, scopes := strings.TrimSpace(spec.Name), spec.Role, spec.Scopes
	if name == "" || len(name) > 200 {
		return Client{}, fmt.Errorf("%w: client name must be 1..200 characters", ErrInvalid)
	}
	r, err := s.Role(ctx, tx, role)
	if err != nil {
		return Client{}, err
	}
	if len(scopes) == 0 {
		scopes = r.Scopes
	}
	for _, sc := range scopes {
		if !slices.Contains(r.Scopes, sc) {
			return Client{}, fmt.Errorf("%w: scope not in role %s", ErrScopeTooWide, role)
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	c := Client{ID: id, AccountID: accountID, Name: name, Role: role, Scopes: scopes, FirstParty: spec.FirstParty, CreatedAt: now}
	_, err = tx.Exec(ctx, `INSERT INTO api_clients (id, account_id, name, secret_hash, role, scopes, created_at, first_party)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		id, accountID, name, secretHash, role, strings.Join(scopes, " "), store.Micros(now), spec.FirstParty)
	if err != nil {
		return Client{}, fmt.Errorf("create client: %w", err)
	}
	return c, nil
}

// ListClients returns the account's API clients, newest first. Secrets are
// never returned: only their hashes are stored.
func (s *Store) ListClients(ctx context.Context, accountID string) ([]Client, error) {
	rows, err := s.db.Reader().Query(ctx, `SELECT id, account_id, name, role, scopes, created_at, COALESCE(revoked_at, 0), first_party
		FROM api_clients WHERE account_id = $1 ORDER BY created_at DESC, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		var c Client
		var scopes string
		var created, revoked int64
		if err := rows.Scan(&c.ID, &c.AccountID, &c.Name, &c.Role, &scopes, &created, &revoked, &c.FirstParty); err != nil {
			return nil, err
		}
		c.Scopes, c.CreatedAt, c.RevokedAt = strings.Fields(scopes), store.FromMicros(created), store.FromMicros(revoked)
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeClient revokes client id of accountID; ErrNotFound when the client
// is not that account's.
func (s *Store) RevokeClient(ctx context.Context, tx store.Tx, accountID, id string) error {
	n, err := tx.Exec(ctx, "UPDATE api_clients SET revoked_at = $1 WHERE account_id = $2 AND id = $3 AND revoked_at IS NULL",
		store.Micros(s.now()), accountID, id)
	if err != nil {
		return fmt.Errorf("revoke client: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("revoke client %s: %w", id, ErrNotFound)
	}
	return nil
}

// ClientCredential implements auth.ClientLookup: it is the one query that
// finds a client without knowing the account, because the credential is
// what names the account.
func (s *Store) ClientCredential(ctx context.Context, clientID string) (auth.ClientCredential, error) {
	var c auth.ClientCredential
	var scopes, status string
	var revoked int64
	err := s.db.Reader().QueryRow(ctx, `SELECT c.id, c.account_id, c.secret_hash, c.role, c.scopes, COALESCE(c.revoked_at, 0), a.status,
		c.first_party FROM api_clients c JOIN accounts a ON a.id = c.account_id WHERE c.id = $1`, clientID).
		Scan(&c.ID, &c.AccountID, &c.SecretHash, &c.Role, &scopes, &revoked, &status, &c.FirstParty)
	if err != nil {
		return auth.ClientCredential{}, fmt.Errorf("client credential: %w", err)
	}
	c.Scopes, c.Revoked, c.AccountActive = strings.Fields(scopes), revoked != 0, status == StatusActive
	return c, nil
}

// clientForUpdate returns an active client of accountID inside tx;
// ErrNotFound when it is another account's, unknown or revoked.
func (s *Store) clientForUpdate(ctx context.Context, tx store.Tx, accountID, id string) (Client, error) {
	var c Client
	var scopes string
	var created int64
	err := tx.QueryRow(ctx, `SELECT id, account_id, name, role, scopes, created_at FROM api_clients
		WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL`, accountID, id).
		Scan(&c.ID, &c.AccountID, &c.Name, &c.Role, &scopes, &created)
	if err != nil {
		return Client{}, fmt.Errorf("client %s: %w", id, err)
	}
	c.Scopes, c.CreatedAt = strings.Fields(scopes), store.FromMicros(created)
	return c, nil
}

func (s *Store) setClientSecret(ctx context.Context, tx store.Tx, accountID, id string, hash []byte) error {
	// secret_rotated_at ends every HMAC session opened with the old secret.
	n, err := tx.Exec(ctx, `UPDATE api_clients SET secret_hash = $1, secret_rotated_at = $2
		WHERE account_id = $3 AND id = $4 AND revoked_at IS NULL`,
		hash, store.Micros(s.now()), accountID, id)
	if err != nil {
		return fmt.Errorf("rotate client secret: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("rotate client %s: %w", id, ErrNotFound)
	}
	return nil
}

// UserCredential implements auth.UserLookup: the user's current role,
// scopes and standing, read on every request a user token makes, so a
// changed role or a disabled user takes effect at once.
func (s *Store) UserCredential(ctx context.Context, accountID, userID string) (auth.UserCredential, error) {
	var u auth.UserCredential
	var scopes, status string
	err := s.db.Reader().QueryRow(ctx, `SELECT u.id, u.account_id, u.email, u.role, r.scopes, u.disabled, a.status
		FROM users u JOIN roles r ON r.name = u.role JOIN accounts a ON a.id = u.account_id
		WHERE u.account_id = $1 AND u.id = $2`, accountID, userID).
		Scan(&u.ID, &u.AccountID, &u.Email, &u.Role, &scopes, &u.Disabled, &status)
	if err != nil {
		return auth.UserCredential{}, fmt.Errorf("user credential: %w", err)
	}
	u.Scopes, u.AccountActive = strings.Fields(scopes), status == StatusActive
	return u, nil
}

// Package domains manages an account's sending domains: registration with
// fresh DKIM keys (RSA-2048 and Ed25519, RFC 6376 and RFC 8463; private
// keys sealed by the account's data key), the DNS records to publish
// (DKIM, SPF, DMARC, MTA-STS and TLS-RPT suggestions), verification by DNS
// lookup, and the signing keys delivery uses. Mail from a domain that is
// not verified is refused.
package domains

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/idna"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Errors callers branch on.
var (
	ErrInvalid    = errors.New("domains: invalid domain name")
	ErrExists     = errors.New("domains: the domain is already registered in this account")
	ErrUnverified = errors.New("domains: the sending domain is not verified")
)

// Statuses of a sending domain.
const (
	StatusPending  = "pending"
	StatusVerified = "verified"
)

// Domain is a sending domain.
type Domain struct {
	AccountID   string
	Name        string
	Status      string
	Selector    string
	RSAPublic   string
	EdPublic    string
	CreatedAt   time.Time
	VerifiedAt  time.Time
	CheckedAt   time.Time
	CheckResult string
}

// RSASelector and EdSelector are the DKIM selectors of the domain's two
// keys.
func (d Domain) RSASelector() string { return d.Selector + "r" }

// EdSelector is the selector of the Ed25519 key.
func (d Domain) EdSelector() string { return d.Selector + "e" }

// Keys are a domain's DKIM signing keys.
type Keys struct {
	Domain      string
	RSASelector string
	RSA         crypto.Signer
	EdSelector  string
	Ed          crypto.Signer
}

// Service manages sending domains.
type Service struct {
	db       *store.Store
	vault    *vault.Vault
	resolver *resolve.Resolver
	log      *audit.Log
	// HeloName is the host name delivery announces; the SPF suggestion
	// names it.
	HeloName string
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu   sync.Mutex
	keys map[string]*Keys // account/domain -> opened keys
}

// New returns the service.
func New(db *store.Store, v *vault.Vault, r *resolve.Resolver, log *audit.Log, heloName string) *Service {
	return &Service{db: db, vault: v, resolver: r, log: log, HeloName: heloName, Now: time.Now, keys: map[string]*Keys{}}
}

// Normalize returns a domain name in the form Sealpost stores: IDNA
// A-labels, lower case, no trailing dot; it must have at least two labels.
func Normalize(name string) (string, error) {
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(strings.TrimSpace(name), "."))
	if err != nil || len(ascii) > 253 || !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("%w: a domain name such as clinic.example.org", ErrInvalid)
	}
	for _, label := range strings.Split(ascii, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") ||
			strings.IndexFunc(label, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
			}) >= 0 {
			return "", fmt.Errorf("%w: a domain name such as clinic.example.org", ErrInvalid)
		}
	}
	return ascii, nil
}

type sealedKeys struct {
	RSA []byte `json:"rsa"` // PKCS #8
	Ed  []byte `json:"ed"`  // PKCS #8
}

func keysAD(accountID, domain string) []byte {
	return []byte("sending_domains/" + accountID + "/" + domain + "/dkim")
}

// Add registers a domain for the actor's account with new DKIM keys; it
// stays pending until Verify finds the DKIM records in DNS.
func (s *Service) Add(ctx context.Context, actor account.Actor, name string) (Domain, error) {
	name, err := Normalize(name)
	if err != nil {
		return Domain{}, err
	}
	accountID := actor.Principal.AccountID
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Domain{}, fmt.Errorf("generate RSA key: %w", err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Domain{}, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	var sk sealedKeys
	if sk.RSA, err = x509.MarshalPKCS8PrivateKey(rsaKey); err != nil {
		return Domain{}, err
	}
	if sk.Ed, err = x509.MarshalPKCS8PrivateKey(edKey); err != nil {
		return Domain{}, err
	}
	plain, _ := json.Marshal(sk)
	sealed, err := s.vault.Seal(ctx, accountID, plain, keysAD(accountID, name))
	if err != nil {
		return Domain{}, err
	}
	rsaPub, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		return Domain{}, err
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	d := Domain{AccountID: accountID, Name: name, Status: StatusPending, Selector: "sp" + now.Format("0601"),
		RSAPublic: base64.StdEncoding.EncodeToString(rsaPub), EdPublic: base64.StdEncoding.EncodeToString(edPub), CreatedAt: now}
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sending_domains (account_id, domain, status, dkim_selector, dkim_rsa_public, dkim_ed_public,
			dkim_keys_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			accountID, name, d.Status, d.Selector, d.RSAPublic, d.EdPublic, sealed, store.Micros(now))
		if errors.Is(err, store.ErrConflict) {
			return ErrExists
		}
		if err != nil {
			return fmt.Errorf("store sending domain: %w", err)
		}
		return s.audit(ctx, tx, actor, "domain.added", name, nil)
	})
	if err != nil {
		return Domain{}, err
	}
	return d, nil
}

// Register is the operator's path (sealpost admin domain add): Add, then
// Verify, or mark verified without looking at DNS when skipDNS is set
// (for DNS the server cannot see).
func (s *Service) Register(ctx context.Context, actor account.Actor, name string, skipDNS bool) (Domain, error) {
	d, err := s.Add(ctx, actor, name)
	if err != nil {
		return Domain{}, err
	}
	if !skipDNS {
		return s.Verify(ctx, actor, d.Name)
	}
	return s.markVerified(ctx, actor, d, "registered by an operator without a DNS check")
}

func (s *Service) markVerified(ctx context.Context, actor account.Actor, d Domain, result string) (Domain, error) {
	now := s.Now().UTC().Truncate(time.Microsecond)
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sending_domains SET status = $1, verified_at = $2, checked_at = $2, check_result = $3
			WHERE account_id = $4 AND domain = $5`, StatusVerified, store.Micros(now), result, d.AccountID, d.Name); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "domain.verified", d.Name, map[string]string{"result": result})
	})
	if err != nil {
		return Domain{}, fmt.Errorf("verify domain: %w", err)
	}
	d.Status, d.VerifiedAt, d.CheckedAt, d.CheckResult = StatusVerified, now, now, result
	return d, nil
}

// Verify looks up the domain's DKIM records and marks it verified when
// both publish the expected keys. It reports what it found either way.
func (s *Service) Verify(ctx context.Context, actor account.Actor, name string) (Domain, error) {
	d, err := s.Get(ctx, actor.Principal.AccountID, name)
	if err != nil {
		return Domain{}, err
	}
	var missing []string
	for _, rec := range []struct{ selector, key string }{{d.RSASelector(), d.RSAPublic}, {d.EdSelector(), d.EdPublic}} {
		host := rec.selector + "._domainkey." + d.Name
		txts, err := s.resolver.TXT(ctx, host)
		if err != nil {
			return Domain{}, fmt.Errorf("look up %s: %w", host, err)
		}
		if !publishes(txts, rec.key) {
			missing = append(missing, host)
		}
	}
	if len(missing) == 0 {
		return s.markVerified(ctx, actor, d, "DKIM records found")
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	result := "DKIM record missing or different at " + strings.Join(missing, " and ")
	if _, err := s.db.Writer().Exec(ctx, `UPDATE sending_domains SET checked_at = $1, check_result = $2 WHERE account_id = $3 AND domain = $4`,
		store.Micros(now), result, d.AccountID, d.Name); err != nil {
		return Domain{}, err
	}
	d.CheckedAt, d.CheckResult = now, result
	return d, nil
}

// publishes reports whether one of the TXT records is a DKIM key record
// with public key key (RFC 6376 §3.6.1 tag list; whitespace is folded).
func publishes(txts []string, key string) bool {
	for _, txt := range txts {
		for _, tag := range strings.Split(txt, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(tag), "=")
			if ok && strings.TrimSpace(k) == "p" && strings.Join(strings.Fields(v), "") == key {
				return true
			}
		}
	}
	return false
}

// Get returns a sending domain of the account (store.ErrNotFound when it
// has none of that name).
func (s *Service) Get(ctx context.Context, accountID, name string) (Domain, error) {
	name, err := Normalize(name)
	if err != nil {
		return Domain{}, fmt.Errorf("%w", store.ErrNotFound)
	}
	rows, err := s.query(ctx, "WHERE account_id = $1 AND domain = $2", accountID, name)
	if err != nil {
		return Domain{}, err
	}
	if len(rows) == 0 {
		return Domain{}, fmt.Errorf("sending domain: %w", store.ErrNotFound)
	}
	return rows[0], nil
}

// List returns the account's sending domains by name.
func (s *Service) List(ctx context.Context, accountID string) ([]Domain, error) {
	return s.query(ctx, "WHERE account_id = $1 ORDER BY domain", accountID)
}

func (s *Service) query(ctx context.Context, where string, args ...any) ([]Domain, error) {
	rows, err := s.db.Reader().Query(ctx, `SELECT account_id, domain, status, dkim_selector, dkim_rsa_public, dkim_ed_public,
		created_at, COALESCE(verified_at, 0), COALESCE(checked_at, 0), check_result FROM sending_domains `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sending domains: %w", err)
	}
	defer rows.Close()
	var out []Domain
	for rows.Next() {
		var d Domain
		var created, verified, checked int64
		if err := rows.Scan(&d.AccountID, &d.Name, &d.Status, &d.Selector, &d.RSAPublic, &d.EdPublic, &created, &verified,
			&checked, &d.CheckResult); err != nil {
			return nil, err
		}
		d.CreatedAt, d.VerifiedAt, d.CheckedAt = store.FromMicros(created), fromMicros(verified), fromMicros(checked)
		out = append(out, d)
	}
	return out, rows.Err()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return store.FromMicros(v)
}

// Delete removes a sending domain; its keys go with it.
func (s *Service) Delete(ctx context.Context, actor account.Actor, name string) error {
	d, err := s.Get(ctx, actor.Principal.AccountID, name)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM sending_domains WHERE account_id = $1 AND domain = $2", d.AccountID, d.Name); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "domain.deleted", d.Name, nil)
	})
	s.mu.Lock()
	delete(s.keys, d.AccountID+"/"+d.Name)
	s.mu.Unlock()
	return err
}

// SigningKeys returns the DKIM keys of a verified domain of the account,
// opened once and then cached; ErrUnverified when the domain is not a
// verified sending domain of the account.
func (s *Service) SigningKeys(ctx context.Context, accountID, domain string) (*Keys, error) {
	cacheKey := accountID + "/" + domain
	s.mu.Lock()
	k := s.keys[cacheKey]
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	var status, selector string
	var sealed []byte
	err := s.db.Reader().QueryRow(ctx, `SELECT status, dkim_selector, dkim_keys_sealed FROM sending_domains
		WHERE account_id = $1 AND domain = $2`, accountID, domain).Scan(&status, &selector, &sealed)
	if errors.Is(err, store.ErrNotFound) || (err == nil && status != StatusVerified) {
		return nil, ErrUnverified
	}
	if err != nil {
		return nil, fmt.Errorf("load DKIM keys: %w", err)
	}
	plain, err := s.vault.Open(ctx, accountID, sealed, keysAD(accountID, domain))
	if err != nil {
		return nil, err
	}
	var sk sealedKeys
	if err := json.Unmarshal(plain, &sk); err != nil {
		return nil, fmt.Errorf("DKIM keys: %w", err)
	}
	rsaKey, err := x509.ParsePKCS8PrivateKey(sk.RSA)
	if err != nil {
		return nil, err
	}
	edKey, err := x509.ParsePKCS8PrivateKey(sk.Ed)
	if err != nil {
		return nil, err
	}
	k = &Keys{Domain: domain, RSASelector: selector + "r", RSA: rsaKey.(crypto.Signer), EdSelector: selector + "e", Ed: edKey.(crypto.Signer)}
	s.mu.Lock()
	s.keys[cacheKey] = k
	s.mu.Unlock()
	return k, nil
}

func (s *Service) audit(ctx context.Context, tx store.Tx, actor account.Actor, action, domain string, details map[string]string) error {
	_, err := s.log.AppendTx(ctx, tx, audit.Event{AccountID: actor.Principal.AccountID, ActorKind: string(actor.Principal.ActorKind),
		ActorID: actor.Principal.ActorID, Action: action, Target: "domain/" + domain, Outcome: audit.OutcomeSuccess,
		SourceIP: actor.SourceIP, RequestID: actor.RequestID, Details: details})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

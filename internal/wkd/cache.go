package wkd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/store"
)

// Results of a lookup, as stored in wkd_keys.result.
const (
	resultKey   = "key"   // a key that validated when fetched
	resultNone  = "none"  // the directory has no key usable for the address
	resultError = "error" // the directory could not be asked
)

// CacheOptions configure a Cache. The zero value uses the package
// defaults, the wall clock, a discarding logger and no metrics registry.
type CacheOptions struct {
	// KeyTTL, NoKeyTTL and ErrorTTL are how long a key, "no key" and a
	// failed lookup are remembered (defaults DefaultKeyTTL,
	// DefaultNoKeyTTL, DefaultErrorTTL).
	KeyTTL, NoKeyTTL, ErrorTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger records failed lookups, never with the address.
	Logger *slog.Logger
	// Registerer takes the lookup counter (MetricLookups).
	Registerer prometheus.Registerer
}

// Cache answers key lookups per account from table wkd_keys, asking the
// directory through a Client when it knows nothing current. The address
// an account looks up is its own data: entries are never shared between
// accounts. Safe for concurrent use.
type Cache struct {
	db      *store.Store
	client  *Client
	opts    CacheOptions
	flight  flight
	lookups *prometheus.CounterVec
	// prefetches bounds the background fetches Prefetch runs at once.
	prefetches chan struct{}
}

// MaxPrefetches is how many background fetches (Prefetch) one node runs
// at once; a prefetch asked for beyond it is dropped, and the address is
// prefetched again on its next miss.
const MaxPrefetches = 16

// entry is what is known of one address for one account.
type entry struct {
	result   string
	material string // result key: the armored key
	reason   string // result none or error: why, safe to log
	expires  time.Time
}

// NewCache returns a cache over db (table wkd_keys) asking client.
func NewCache(db *store.Store, client *Client, opts CacheOptions) (*Cache, error) {
	if opts.KeyTTL <= 0 {
		opts.KeyTTL = DefaultKeyTTL
	}
	if opts.NoKeyTTL <= 0 {
		opts.NoKeyTTL = DefaultNoKeyTTL
	}
	if opts.ErrorTTL <= 0 {
		opts.ErrorTTL = DefaultErrorTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lookups, err := newLookupCounter(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Cache{db: db, client: client, opts: opts, lookups: lookups, prefetches: make(chan struct{}, MaxPrefetches)}, nil
}

func (c *Cache) now() time.Time { return c.opts.Now().UTC().Truncate(time.Microsecond) }

// Key returns the account's key for address from the directory, valid
// now: from the cache while its entry lasts, else fetched (concurrent
// lookups of the address on this node share one fetch). nil, nil means
// the directory has no usable key; an error wraps ErrUnavailable (the
// directory could not be asked, now or within ErrorTTL) or is a store
// fault.
func (c *Cache) Key(ctx context.Context, accountID, address string) (*pgpmime.PublicKey, error) {
	a, err := mail.ParseAddress("address", strings.TrimSpace(address))
	if err != nil {
		return nil, nil // an address that does not parse has no directory
	}
	// The lookup form of package keys: lower case, the domain in A-labels.
	addr := strings.ToLower(a.Addr())
	e, ok, err := c.cached(ctx, accountID, addr)
	if err != nil {
		return nil, err
	}
	if ok {
		c.lookups.WithLabelValues(labelCached).Inc()
		return e.key(addr, c.opts.Now())
	}
	e, shared, err := c.flight.do(ctx, accountID+"\x00"+addr, func() entry {
		// The fetch runs on its own deadline (the client's timeout) so
		// that one impatient caller leaves a whole answer for the others.
		return c.fetch(context.WithoutCancel(ctx), accountID, address, addr)
	})
	if err != nil {
		return nil, err
	}
	if shared {
		c.lookups.WithLabelValues(labelCached).Inc()
	}
	return e.key(addr, c.opts.Now())
}

// Cached is Key without the network: the cached answer when the cache
// holds a current one (known true), else known false and, when fetch is
// set, a background fetch of the address that fills the cache for the
// next lookup (concurrent ones share it, MaxPrefetches at most).
func (c *Cache) Cached(ctx context.Context, accountID, address string, fetch bool) (key *pgpmime.PublicKey, known bool, err error) {
	a, err := mail.ParseAddress("address", strings.TrimSpace(address))
	if err != nil {
		return nil, true, nil // an address that does not parse has no directory
	}
	addr := strings.ToLower(a.Addr())
	e, ok, err := c.cached(ctx, accountID, addr)
	if err != nil || !ok {
		if err == nil && fetch {
			c.prefetch(accountID, address, addr)
		}
		return nil, false, err
	}
	c.lookups.WithLabelValues(labelCached).Inc()
	key, err = e.key(addr, c.opts.Now())
	return key, true, err
}

// prefetch fetches the address in the background, unless MaxPrefetches
// already run. It runs on the client's own deadline, not the caller's.
func (c *Cache) prefetch(accountID, address, addr string) {
	select {
	case c.prefetches <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-c.prefetches }()
		_, _, _ = c.flight.do(context.Background(), accountID+"\x00"+addr, func() entry {
			return c.fetch(context.Background(), accountID, address, addr)
		})
	}()
}

// key gives the entry's answer for addr at now: a cached key is
// validated again (it may have expired or been revoked since).
func (e entry) key(addr string, now time.Time) (*pgpmime.PublicKey, error) {
	switch e.result {
	case resultKey:
		pk, err := Validate([]byte(e.material), addr, now)
		if err != nil {
			return nil, nil
		}
		return pk, nil
	case resultError:
		return nil, unavailable(e.reason, nil)
	}
	return nil, nil
}

// cached returns the account's current entry for addr, if any.
func (c *Cache) cached(ctx context.Context, accountID, addr string) (entry, bool, error) {
	var e entry
	var material *string
	var expires int64
	err := c.db.Reader().QueryRow(ctx, `SELECT result, material, expires_at FROM wkd_keys WHERE account_id = $1 AND address = $2`,
		accountID, addr).Scan(&e.result, &material, &expires)
	if errors.Is(err, store.ErrNotFound) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("read WKD cache: %w", err)
	}
	e.expires = store.FromMicros(expires)
	if !c.now().Before(e.expires) {
		return entry{}, false, nil
	}
	if material != nil {
		e.material = *material
	}
	if e.result == resultError {
		e.reason = "the directory could not be asked recently"
	}
	return e, true, nil
}

// fetch asks the directory and stores the answer. It logs a failure or a
// refused key with the account and the reason only: the address is the
// account's data (and the reason never holds it).
func (c *Cache) fetch(ctx context.Context, accountID, address, addr string) entry {
	found, err := c.client.Lookup(ctx, address)
	now := c.now()
	var e entry
	var le *LookupError
	switch {
	case err == nil:
		e = entry{result: resultKey, material: string(found.Armored), expires: now.Add(c.opts.KeyTTL)}
		c.lookups.WithLabelValues(labelHit).Inc()
	case errors.As(err, &le) && le.NoKey:
		e = entry{result: resultNone, reason: le.Reason, expires: now.Add(c.opts.NoKeyTTL)}
		c.lookups.WithLabelValues(labelMiss).Inc()
		if le.Err != nil { // refused or no directory, not simply a 404
			c.opts.Logger.Info("wkd: no usable key", "account", accountID, "reason", le.Reason)
		}
	default:
		e = entry{result: resultError, reason: safeReason(err), expires: now.Add(c.opts.ErrorTTL)}
		c.lookups.WithLabelValues(labelError).Inc()
		c.opts.Logger.Warn("wkd: lookup failed", "account", accountID, "reason", e.reason)
	}
	if err := c.save(ctx, accountID, addr, e, now); err != nil {
		c.opts.Logger.Warn("wkd: cache not saved", "account", accountID, "error", err)
	}
	return e
}

func safeReason(err error) string {
	var le *LookupError
	if errors.As(err, &le) {
		return le.Reason
	}
	return "lookup failed"
}

// save replaces the account's entry for addr.
func (c *Cache) save(ctx context.Context, accountID, addr string, e entry, now time.Time) error {
	var material any
	if e.result == resultKey {
		material = e.material
	}
	_, err := c.db.Writer().Exec(ctx, `INSERT INTO wkd_keys (account_id, address, result, material, fetched_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (account_id, address) DO UPDATE SET result = $3, material = $4, fetched_at = $5, expires_at = $6`,
		accountID, addr, e.result, material, store.Micros(now), store.Micros(e.expires))
	if err != nil {
		return fmt.Errorf("save WKD cache entry: %w", err)
	}
	return nil
}

// Sweep deletes expired entries (of every account: they answer nothing
// any more) and returns how many.
func (c *Cache) Sweep(ctx context.Context) (int64, error) {
	n, err := c.db.Writer().Exec(ctx, `DELETE FROM wkd_keys WHERE expires_at <= $1`, store.Micros(c.now()))
	if err != nil {
		return 0, fmt.Errorf("sweep WKD cache: %w", err)
	}
	return n, nil
}

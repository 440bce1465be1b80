package wkd

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/pgpmime"
	"github.com/sealpost/sealpost/internal/secureline"
)

// Settings give an account's SecureLine settings (secureline.Service),
// for its wkd_enabled flag.
type Settings interface {
	Settings(ctx context.Context, accountID string) (secureline.Settings, error)
}

// Finder answers the send path's key lookups (SecureLine's KeyFinder,
// delivery's Keys): the uploaded keys, and for a recipient without an
// uploaded PGP key, when the account enabled WKD, the directory through
// the cache. A directory that fails counts as no key. Every other lookup
// (S/MIME, sender keys) is the embedded keys.Service's own: WKD holds
// recipients' OpenPGP keys only.
type Finder struct {
	*keys.Service
	settings Settings
	cache    *Cache
	// cachedOnly: never wait on the directory (CachedOnly).
	cachedOnly bool
}

// CachedOnly returns a Finder that answers from the directory cache
// alone and, on a miss, fetches in the background for the next message:
// for the acceptance step, whose 202 must not wait on the recipients'
// web servers (as it does not wait on their MX hosts' TLS). Such a
// recipient is decided without a PGP key this once (TLS or the portal,
// never clear text); preflight and delivery ask the directory.
func (f *Finder) CachedOnly() *Finder {
	c := *f
	c.cachedOnly = true
	return &c
}

// NewFinder returns a Finder over the uploaded keys, the accounts'
// settings and the directory cache.
func NewFinder(uploaded *keys.Service, settings Settings, cache *Cache) *Finder {
	return &Finder{Service: uploaded, settings: settings, cache: cache}
}

// RecipientPGP returns the recipient's PGP key, uploaded or from the
// directory, or nil, nil when there is none.
func (f *Finder) RecipientPGP(ctx context.Context, accountID, address string) (*pgpmime.PublicKey, error) {
	key, _, err := f.RecipientPGPSource(ctx, accountID, address)
	return key, err
}

// RecipientPGPSource is RecipientPGP that also says where the key came
// from (secureline.SourcedKeyFinder). Errors are those of the uploaded
// keys and the settings (store faults); the directory's never surface.
func (f *Finder) RecipientPGPSource(ctx context.Context, accountID, address string) (*pgpmime.PublicKey, secureline.KeySource, error) {
	key, err := f.Service.RecipientPGP(ctx, accountID, address)
	if err != nil || key != nil {
		return key, secureline.KeyUploaded, err
	}
	st, err := f.settings.Settings(ctx, accountID)
	if err != nil {
		return nil, "", fmt.Errorf("read whether the account uses WKD: %w", err)
	}
	if !st.WKDEnabled {
		return nil, "", nil
	}
	// A directory that cannot be asked (or a cache fault) means no key:
	// the decision falls to TLS or the portal, and the send goes on.
	if f.cachedOnly {
		key, _, err = f.cache.Cached(ctx, accountID, address, true)
	} else {
		key, err = f.cache.Key(ctx, accountID, address)
	}
	if err != nil || key == nil {
		return nil, "", nil
	}
	return key, secureline.KeyWKD, nil
}

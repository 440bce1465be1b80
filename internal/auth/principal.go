// Package auth resolves credentials presented on a request to a Principal
// and decides whether that principal holds a scope. It owns credential
// verification (API client secrets, user passwords); it does not own the
// storage of accounts, users or clients (see package account).
package auth

import (
	"context"
	"slices"
)

// ActorKind names the kind of actor behind a principal or an audit event.
type ActorKind string

// Actor kinds.
const (
	ActorUser   ActorKind = "user"
	ActorClient ActorKind = "client"
	ActorSystem ActorKind = "system"
)

// Principal is the authenticated caller of one request. AccountID always
// comes from the verified credential, never from the request body.
type Principal struct {
	AccountID string
	ActorKind ActorKind
	ActorID   string
	Role      string
	Scopes    []string
	// SessionID is set when the request was signed with an HMAC session.
	SessionID string
}

// Has reports whether the principal holds scope (or the admin scope).
// Every authenticated principal holds ScopeAuthenticated.
func (p Principal) Has(scope string) bool {
	return scope == ScopeAuthenticated || slices.Contains(p.Scopes, scope) || slices.Contains(p.Scopes, ScopeAdmin)
}

// ScopeAuthenticated is the requirement of operations any authenticated
// principal may call on its own behalf (opening or closing its session).
// It is never granted: every principal has it.
const ScopeAuthenticated = "authenticated"

// Scopes known to the platform. Later issues add more.
const (
	ScopeAdmin          = "admin"
	ScopeAuditRead      = "audit:read"
	ScopeMessagesSend   = "messages:send"
	ScopeMessagesRead   = "messages:read"
	ScopeContactsWrite  = "contacts:write"
	ScopeWorkflowsWrite = "workflows:write"
)

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal stored by WithPrincipal.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// AllScopes returns every scope the platform knows.
func AllScopes() []string {
	return []string{ScopeAdmin, ScopeAuditRead, ScopeMessagesSend, ScopeMessagesRead, ScopeContactsWrite, ScopeWorkflowsWrite}
}

package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/httpapi"
)

// refusalAuditor records refused credentials and denied scopes in the
// audit log of the account concerned. A refused credential whose client
// id is unknown names no account; it is counted in the access log and
// metrics (401) but not audited, so guessing ids cannot flood the log.
type refusalAuditor struct {
	log    *audit.Log
	logger *slog.Logger
}

var _ httpapi.RefusalRecorder = refusalAuditor{}

func (a refusalAuditor) AuthenticationFailed(r *http.Request, err error) {
	var rc *auth.RefusedClient
	if !errors.As(err, &rc) {
		return
	}
	a.append(r, audit.Event{
		AccountID: rc.AccountID, ActorKind: string(auth.ActorClient), ActorID: rc.ClientID,
		Action: "auth.failed", Target: "client/" + rc.ClientID, Outcome: audit.OutcomeFailure,
		Details: map[string]string{"reason": rc.Reason, "route": r.Pattern},
	})
}

func (a refusalAuditor) PermissionDenied(r *http.Request, p auth.Principal, scope string) {
	a.append(r, audit.Event{
		AccountID: p.AccountID, ActorKind: string(p.ActorKind), ActorID: p.ActorID,
		Action: "auth.denied", Target: "route/" + r.Pattern, Outcome: audit.OutcomeDenied,
		Details: map[string]string{"scope": scope},
	})
}

func (a refusalAuditor) append(r *http.Request, e audit.Event) {
	e.RequestID = httpapi.RequestID(r.Context())
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.SourceIP = host
	}
	// The refusal is answered whatever happens here; a failed audit write
	// is logged for the operator.
	if _, err := a.log.Append(context.WithoutCancel(r.Context()), e); err != nil {
		a.logger.Error("audit refusal", "action", e.Action, "request_id", e.RequestID, "error", err.Error())
	}
}

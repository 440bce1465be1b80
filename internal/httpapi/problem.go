package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/domains"
	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/messages"
	"github.com/sealpost/sealpost/internal/store"
)

// ProblemType is the stable `type` URI of a kind of problem
// (RFC 9457 §3.1.1). Clients branch on it; it never changes meaning.
type ProblemType string

// Problem types. Each has one HTTP status and title (see NewProblem).
const (
	TypeBadRequest           ProblemType = "urn:sealpost:problem:bad-request"
	TypeMalformedJSON        ProblemType = "urn:sealpost:problem:malformed-json"
	TypeUnknownField         ProblemType = "urn:sealpost:problem:unknown-field"
	TypeValidation           ProblemType = "urn:sealpost:problem:validation"
	TypeUnauthenticated      ProblemType = "urn:sealpost:problem:unauthenticated"
	TypeForbidden            ProblemType = "urn:sealpost:problem:forbidden"
	TypeNotFound             ProblemType = "urn:sealpost:problem:not-found"
	TypeMethodNotAllowed     ProblemType = "urn:sealpost:problem:method-not-allowed"
	TypePayloadTooLarge      ProblemType = "urn:sealpost:problem:payload-too-large"
	TypeUnsupportedMediaType ProblemType = "urn:sealpost:problem:unsupported-media-type"
	TypeConflict             ProblemType = "urn:sealpost:problem:conflict"
	TypeRateLimited          ProblemType = "urn:sealpost:problem:rate-limited"
	TypeInternal             ProblemType = "urn:sealpost:problem:internal"

	// TypeMessageBlocked: a DLP policy rule blocks the message.
	TypeMessageBlocked ProblemType = "urn:sealpost:problem:message-blocked"
	// TypeNoEncryption: a recipient cannot get the encryption
	// the message needs (or pins).
	TypeNoEncryption ProblemType = "urn:sealpost:problem:encryption-unavailable"
)

// problemKinds gives each type its status and title. The title is the same
// for every occurrence (RFC 9457 §3.1.3).
var problemKinds = map[ProblemType]struct {
	status int
	title  string
}{
	TypeBadRequest:           {http.StatusBadRequest, "Bad request"},
	TypeMalformedJSON:        {http.StatusBadRequest, "Malformed JSON"},
	TypeUnknownField:         {http.StatusBadRequest, "Unknown field"},
	TypeValidation:           {http.StatusUnprocessableEntity, "Validation failed"},
	TypeUnauthenticated:      {http.StatusUnauthorized, "Authentication required"},
	TypeForbidden:            {http.StatusForbidden, "Forbidden"},
	TypeNotFound:             {http.StatusNotFound, "Not found"},
	TypeMethodNotAllowed:     {http.StatusMethodNotAllowed, "Method not allowed"},
	TypePayloadTooLarge:      {http.StatusRequestEntityTooLarge, "Payload too large"},
	TypeUnsupportedMediaType: {http.StatusUnsupportedMediaType, "Unsupported media type"},
	TypeConflict:             {http.StatusConflict, "Conflict"},
	TypeRateLimited:          {http.StatusTooManyRequests, "Too many requests"},
	TypeInternal:             {http.StatusInternalServerError, "Internal server error"},
	TypeMessageBlocked:       {http.StatusUnprocessableEntity, "Message blocked by policy"},
	TypeNoEncryption:         {http.StatusUnprocessableEntity, "Encryption unavailable"},
	TypeTemplateInvalid:      {http.StatusUnprocessableEntity, "Invalid template"},
	TypeTemplateRender:       {http.StatusUnprocessableEntity, "Template failed to render"},
	TypeUnknownTemplate:      {http.StatusUnprocessableEntity, "Unknown template"},
	TypeKeyMalformed:         {http.StatusUnprocessableEntity, "Malformed key or certificate"},
	TypeKeyExpired:           {http.StatusUnprocessableEntity, "Key or certificate expired"},
	TypeKeyRevoked:           {http.StatusUnprocessableEntity, "Key or certificate revoked"},
	TypeKeyWrongUsage:        {http.StatusUnprocessableEntity, "Key or certificate not usable for this purpose"},
	TypeKeyAddressMismatch:   {http.StatusUnprocessableEntity, "Key or certificate is for another address"},
	TypeKeyUntrusted:         {http.StatusUnprocessableEntity, "Certificate not trusted"},
	TypeKeyWeak:              {http.StatusUnprocessableEntity, "Key too weak or unsupported"},
	TypeKeyPairMismatch:      {http.StatusUnprocessableEntity, "Private key does not match its certificate or public key"},
	TypeKeyLocked:            {http.StatusUnprocessableEntity, "Private key locked; the passphrase does not open it"},
}

// Problem is an RFC 9457 problem details object, the body of every error
// response. It is also an error, so handlers and helpers can return one
// and have it written as is. Detail and Errors must never hold PHI,
// secrets, stack traces or request content beyond field names.
type Problem struct {
	Type      ProblemType  `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// FieldError names one offending field (JSON path) or query parameter.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// NewProblem returns a problem of type t with its status and title and the
// given detail. An unknown type yields an internal problem.
func NewProblem(t ProblemType, detail string) *Problem {
	k, ok := problemKinds[t]
	if !ok {
		t, k = TypeInternal, problemKinds[TypeInternal]
	}
	return &Problem{Type: t, Title: k.title, Status: k.status, Detail: detail}
}

// WithErrors returns p with field errors appended.
func (p *Problem) WithErrors(errs ...FieldError) *Problem {
	p.Errors = append(p.Errors, errs...)
	return p
}

// Error implements error with the type and detail, never more.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return string(p.Type)
	}
	return fmt.Sprintf("%s: %s", p.Type, p.Detail)
}

// problemFor is the one place that maps errors to problems. Errors that
// are not problems and that callers cannot have caused become an internal
// problem whose detail says nothing about the cause.
func problemFor(err error) *Problem {
	var p *Problem
	var tooLarge *http.MaxBytesError
	var fieldErr *mail.FieldError
	var encErr *messages.EncryptionError
	if tp, ok := templateProblem(err); ok {
		return tp
	}
	if pp, ok := portalProblem(err); ok {
		return pp
	}
	if kp, ok := keysProblem(err); ok {
		return kp
	}
	switch {
	case errors.As(err, &p):
		c := *p
		return &c
	case errors.As(err, &tooLarge):
		return NewProblem(TypePayloadTooLarge, fmt.Sprintf("the request body exceeds %d bytes", tooLarge.Limit))
	case errors.Is(err, auth.ErrNoCredentials), errors.Is(err, auth.ErrBadCredentials):
		return NewProblem(TypeUnauthenticated, "a valid credential is required")
	case errors.Is(err, store.ErrNotFound):
		// Another account's resource is "not found" too: never confirm it exists.
		return NewProblem(TypeNotFound, "no such resource in this account")
	case errors.Is(err, account.ErrEscalation):
		return NewProblem(TypeForbidden, "a credential cannot be granted scopes the caller does not hold")
	case errors.Is(err, account.ErrScopeTooWide):
		return NewProblem(TypeValidation, "scopes must lie within the role's scopes").
			WithErrors(FieldError{Field: "scopes", Message: "not all within the role"})
	case errors.Is(err, account.ErrLastOwner):
		return NewProblem(TypeConflict, "the account must keep at least one active owner")
	case errors.Is(err, account.ErrEmailTaken):
		return NewProblem(TypeConflict, "a user with this email already exists").
			WithErrors(FieldError{Field: "email", Message: "already registered"})
	case errors.Is(err, account.ErrLockout):
		return NewProblem(TypeValidation, "the policy would refuse the request that sets it ("+
			strings.TrimPrefix(err.Error(), account.ErrLockout.Error()+": ")+"); change it from an allowed address and scheme")
	case errors.Is(err, account.ErrInvalid):
		// The domain's messages name the rule, never the offending value.
		return NewProblem(TypeValidation, err.Error())
	case errors.As(err, &fieldErr):
		return NewProblem(TypeValidation, fieldErr.Message).WithErrors(FieldError{Field: fieldErr.Field, Message: fieldErr.Message})
	case errors.Is(err, messages.ErrIdempotencyConflict):
		return NewProblem(TypeConflict, "this Idempotency-Key was used with a different request in the last 24 hours")
	case errors.Is(err, messages.ErrTooLarge):
		return NewProblem(TypePayloadTooLarge, "the composed message exceeds 25 MiB")
	case errors.Is(err, messages.ErrBlocked):
		return NewProblem(TypeMessageBlocked, "a DLP policy rule of this account blocks the message; nothing was stored or sent")
	case errors.As(err, &encErr):
		return NewProblem(TypeNoEncryption, encErr.Reason).WithErrors(FieldError{Field: encErr.Field, Message: encErr.Reason})
	case errors.Is(err, domains.ErrInvalid):
		return NewProblem(TypeValidation, "the domain must be a domain name such as clinic.example.org").
			WithErrors(FieldError{Field: "domain", Message: "not a domain name"})
	case errors.Is(err, domains.ErrExists):
		return NewProblem(TypeConflict, "the domain is already registered in this account")
	case errors.Is(err, messages.ErrBadCursor), errors.Is(err, audit.ErrBadCursor):
		return NewProblem(TypeBadRequest, "the cursor is invalid or expired").
			WithErrors(FieldError{Field: "cursor", Message: "invalid or expired cursor"})
	default:
		return NewProblem(TypeInternal, "the server failed; quote the request id to support")
	}
}

// writeError answers err as a problem. Internal problems are logged with
// the error (which by convention carries no secrets or PHI) so the
// request id in the response leads an operator to the cause.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.Status >= http.StatusInternalServerError {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(r.Context())),
			slog.String("error", err.Error()))
	}
	writeProblem(w, r, p)
}

// writeProblem writes p with the request's id. The instance names the
// request, not its path, because paths may carry identifiers the problem
// must not echo.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	id := requestID(r.Context())
	p.RequestID = id
	if p.Instance == "" && id != "" {
		p.Instance = "urn:sealpost:request:" + id
	}
	body, err := json.Marshal(p)
	if err != nil {
		// A Problem holds only strings and ints; this cannot happen.
		body = []byte(`{"type":"` + string(TypeInternal) + `","title":"Internal server error","status":500,"request_id":""}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Del("Content-Length")
	if p.Status == http.StatusUnauthorized {
		// RFC 9110 §15.5.2: a 401 carries at least one challenge.
		h.Set("WWW-Authenticate", authChallenge)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/keys"
)

// KeyService stores and lists the caller's account's recipient PGP keys
// and S/MIME certificates and sender S/MIME certificates and PGP keys
// (package keys).
type KeyService interface {
	UploadPGP(ctx context.Context, actor account.Actor, u keys.Upload) (keys.Stored, error)
	UploadSMIME(ctx context.Context, actor account.Actor, u keys.Upload) (keys.Stored, error)
	UploadSender(ctx context.Context, actor account.Actor, u keys.Upload) (keys.Stored, error)
	UploadPGPSender(ctx context.Context, actor account.Actor, u keys.Upload) (keys.Stored, error)
	List(ctx context.Context, accountID string, kind keys.Kind, f keys.Filter) (keys.Page, error)
	Delete(ctx context.Context, actor account.Actor, kind keys.Kind, id string) error
}

// Problem types of refused keys, one per cause (all 422).
const (
	TypeKeyMalformed       ProblemType = "urn:sealpost:problem:key-malformed"
	TypeKeyExpired         ProblemType = "urn:sealpost:problem:key-expired"
	TypeKeyRevoked         ProblemType = "urn:sealpost:problem:key-revoked"
	TypeKeyWrongUsage      ProblemType = "urn:sealpost:problem:key-wrong-usage"
	TypeKeyAddressMismatch ProblemType = "urn:sealpost:problem:key-address-mismatch"
	TypeKeyUntrusted       ProblemType = "urn:sealpost:problem:key-untrusted"
	TypeKeyWeak            ProblemType = "urn:sealpost:problem:key-weak"
	TypeKeyPairMismatch    ProblemType = "urn:sealpost:problem:key-pair-mismatch"
	TypeKeyLocked          ProblemType = "urn:sealpost:problem:key-locked"
)

var keyCauseTypes = map[keys.Cause]ProblemType{
	keys.CauseMalformed:       TypeKeyMalformed,
	keys.CauseExpired:         TypeKeyExpired,
	keys.CauseRevoked:         TypeKeyRevoked,
	keys.CauseWrongUsage:      TypeKeyWrongUsage,
	keys.CauseAddressMismatch: TypeKeyAddressMismatch,
	keys.CauseUntrusted:       TypeKeyUntrusted,
	keys.CauseWeakKey:         TypeKeyWeak,
	keys.CauseKeyMismatch:     TypeKeyPairMismatch,
	keys.CauseLocked:          TypeKeyLocked,
}

// keyRoute is one family of /v1/keys routes.
type keyRoute struct {
	path string
	kind keys.Kind
}

var keyRoutes = []keyRoute{
	{"/v1/keys/pgp", keys.PGP},
	{"/v1/keys/smime", keys.SMIME},
	{"/v1/keys/smime-senders", keys.SMIMESender},
	{"/v1/keys/pgp-senders", keys.PGPSender},
}

// keyRoutes: key management is an administrator's act (admin scope): a
// stored key decides how every later message to or from the address is
// encrypted or signed.
func (s *Server) keyRoutes() {
	for _, kr := range keyRoutes {
		s.HandleScoped("POST "+kr.path, auth.ScopeAdmin, s.uploadKey(kr.kind))
		s.HandleScoped("GET "+kr.path, auth.ScopeAdmin, s.listKeys(kr.kind))
		s.HandleScoped("DELETE "+kr.path+"/{key_id}", auth.ScopeAdmin, s.deleteKey(kr.kind))
	}
}

// apiKey is the PGPKey, SMIMECertificate, SMIMESender and PGPSender
// schemas of api/openapi.yaml; S/MIME fields are left out of PGP keys.
type apiKey struct {
	ID           string     `json:"id"`
	Address      *string    `json:"address"`
	Domain       *string    `json:"domain,omitempty"`
	SignsAs      string     `json:"signs_as,omitempty"`
	Fingerprint  string     `json:"fingerprint"`
	Status       string     `json:"status"`
	ExpiresAt    *time.Time `json:"expires_at"`
	Subject      string     `json:"subject,omitempty"`
	Issuer       string     `json:"issuer,omitempty"`
	SerialNumber string     `json:"serial_number,omitempty"`
	NotBefore    *time.Time `json:"not_before,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	CreatedBy    struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"created_by"`
}

func toAPIKey(k keys.Key) apiKey {
	out := apiKey{ID: k.ID, Fingerprint: k.Fingerprint, Status: k.Status, ExpiresAt: optionalTime(k.ExpiresAt),
		CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt}
	out.CreatedBy.Kind, out.CreatedBy.ID = k.CreatedBy.Kind, k.CreatedBy.ID
	if k.Address != "" {
		out.Address = &k.Address
	}
	if k.Kind == keys.SMIME || k.Kind == keys.SMIMESender {
		out.Subject, out.Issuer, out.SerialNumber, out.NotBefore = k.Subject, k.Issuer, k.Serial, optionalTime(k.NotBefore)
	}
	if k.Kind == keys.SMIMESender || k.Kind == keys.PGPSender {
		out.SignsAs = k.ValidatedAs
		if k.Domain != "" {
			out.Domain = &k.Domain
		}
	}
	return out
}

// keyUploadRequest is the union of the upload schemas; fields that do
// not belong to the kind are refused like unknown ones. The passphrase
// only unlocks a PGP sender key during the upload.
type keyUploadRequest struct {
	Address     string `json:"address"`
	Domain      string `json:"domain"`
	PublicKey   string `json:"public_key"`
	Certificate string `json:"certificate"`
	PrivateKey  string `json:"private_key"`
	Passphrase  string `json:"passphrase"`
}

// foreignField names a field set in q that kind does not take.
func (q keyUploadRequest) foreignField(kind keys.Kind) string {
	set := map[string]bool{"domain": q.Domain != "", "public_key": q.PublicKey != "",
		"certificate": q.Certificate != "", "private_key": q.PrivateKey != "", "passphrase": q.Passphrase != ""}
	allowed := map[keys.Kind][]string{
		keys.PGP:         {"public_key"},
		keys.SMIME:       {"certificate"},
		keys.SMIMESender: {"domain", "certificate", "private_key"},
		keys.PGPSender:   {"domain", "private_key", "passphrase"},
	}[kind]
	for _, name := range []string{"domain", "public_key", "certificate", "private_key", "passphrase"} {
		if !set[name] {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return name
		}
	}
	return ""
}

func (s *Server) uploadKey(kind keys.Kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q keyUploadRequest
		if err := decodeJSON(r, &q); err != nil {
			s.writeError(w, r, err)
			return
		}
		if name := q.foreignField(kind); name != "" {
			writeProblem(w, r, NewProblem(TypeUnknownField, "unknown field \""+name+"\"").
				WithErrors(FieldError{Field: name, Message: "unknown field"}))
			return
		}
		u := keys.Upload{Address: q.Address, Domain: q.Domain, PublicKey: q.PublicKey, Certificate: q.Certificate, PrivateKey: q.PrivateKey,
			Passphrase: q.Passphrase}
		var (
			st  keys.Stored
			err error
		)
		switch kind {
		case keys.PGP:
			st, err = s.opts.Keys.UploadPGP(r.Context(), actor(r), u)
		case keys.SMIME:
			st, err = s.opts.Keys.UploadSMIME(r.Context(), actor(r), u)
		case keys.PGPSender:
			st, err = s.opts.Keys.UploadPGPSender(r.Context(), actor(r), u)
		default:
			st, err = s.opts.Keys.UploadSender(r.Context(), actor(r), u)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusCreated
		if st.Replaced {
			status = http.StatusOK
		}
		s.writeJSON(w, r, status, toAPIKey(st.Key))
	})
}

func (s *Server) listKeys(kind keys.Kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, perr := parseKeyFilter(r.URL.Query())
		if perr != nil {
			writeProblem(w, r, perr)
			return
		}
		page, err := s.opts.Keys.List(r.Context(), actor(r).Principal.AccountID, kind, f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		data := make([]apiKey, 0, len(page.Keys))
		for _, k := range page.Keys {
			data = append(data, toAPIKey(k))
		}
		s.writeJSON(w, r, http.StatusOK, pageOf(data, page.NextCursor))
	})
}

func parseKeyFilter(q url.Values) (keys.Filter, *Problem) {
	var f keys.Filter
	bad := func(field, msg string) (keys.Filter, *Problem) {
		return keys.Filter{}, NewProblem(TypeBadRequest, "invalid query parameter "+field).WithErrors(FieldError{Field: field, Message: msg})
	}
	for name := range q {
		switch name {
		case "limit", "cursor", "address":
		default:
			return bad(truncate(name, maxEchoedFieldName), "unknown parameter")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > keys.MaxLimit {
			return bad("limit", "an integer from 1 to "+strconv.Itoa(keys.MaxLimit))
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); len(v) > maxCursorLen {
		return bad("cursor", "invalid or expired cursor")
	}
	f.Cursor = q.Get("cursor")
	if v := q.Get("address"); len(v) > 254 {
		return bad("address", "at most 254 characters")
	}
	f.Address = q.Get("address")
	return f, nil
}

func (s *Server) deleteKey(kind keys.Kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.opts.Keys.Delete(r.Context(), actor(r), kind, r.PathValue("key_id")); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// keysProblem maps package keys' errors (problemFor asks it first).
// Details name the rule that failed, never key material or addresses.
func keysProblem(err error) (*Problem, bool) {
	var ve *keys.ValidationError
	var fe *keys.FieldError
	switch {
	case errors.As(err, &ve):
		t, ok := keyCauseTypes[ve.Cause]
		if !ok {
			t = TypeValidation
		}
		return NewProblem(t, ve.Message).WithErrors(FieldError{Field: ve.Field, Message: ve.Message}), true
	case errors.As(err, &fe):
		return NewProblem(TypeValidation, fe.Message).WithErrors(FieldError{Field: fe.Field, Message: fe.Message}), true
	case errors.Is(err, keys.ErrTooMany):
		return NewProblem(TypeConflict, "the address already has "+strconv.Itoa(keys.MaxPerAddress)+
			" keys of this kind; delete one first"), true
	case errors.Is(err, keys.ErrBadCursor):
		return NewProblem(TypeBadRequest, "the cursor is invalid or expired").
			WithErrors(FieldError{Field: "cursor", Message: "invalid or expired cursor"}), true
	case errors.Is(err, keys.ErrConcurrent):
		return NewProblem(TypeConflict, "the same key was uploaded concurrently; retry"), true
	}
	return nil, false
}

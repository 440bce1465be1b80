package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/sealpost/sealpost/internal/keys"
)

// Every refusal cause of package keys has its own 422 problem type: a
// cause added there without a type here would answer 500.
func TestEveryKeyCauseHasItsOwnProblemType(t *testing.T) {
	t.Parallel()
	causes := []keys.Cause{keys.CauseMalformed, keys.CauseExpired, keys.CauseRevoked, keys.CauseWrongUsage,
		keys.CauseAddressMismatch, keys.CauseUntrusted, keys.CauseWeakKey, keys.CauseKeyMismatch, keys.CauseLocked}
	seen := map[ProblemType]bool{}
	for _, c := range causes {
		err := fmt.Errorf("upload: %w", &keys.ValidationError{Field: "certificate", Cause: c, Message: "rule"})
		p := problemFor(err)
		if p.Status != http.StatusUnprocessableEntity || p.Type == TypeValidation || seen[p.Type] {
			t.Errorf("cause %s -> %d %s, want its own 422 type", c, p.Status, p.Type)
		}
		seen[p.Type] = true
		if len(p.Errors) != 1 || p.Errors[0].Field != "certificate" {
			t.Errorf("cause %s: errors %v, want the field", c, p.Errors)
		}
	}
	for err, want := range map[error]int{
		keys.ErrTooMany:   http.StatusConflict,
		keys.ErrBadCursor: http.StatusBadRequest,
		&keys.FieldError{Field: "address", Message: "required"}: http.StatusUnprocessableEntity,
		errors.New("database down"):                             http.StatusInternalServerError,
	} {
		if p := problemFor(err); p.Status != want {
			t.Errorf("%v -> %d, want %d", err, p.Status, want)
		}
	}
}

package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// maxEchoedFieldName bounds how much of a client-chosen field name a
// problem repeats.
const maxEchoedFieldName = 64

// decodeJSON reads the request body as exactly one JSON value into dst,
// strictly: the body must be declared application/json (UTF-8), every
// field must be known to dst, and nothing may follow the value. Failures
// are *Problem values (or an *http.MaxBytesError, which problemFor maps to
// 413) that never echo the body's content.
func decodeJSON(r *http.Request, dst any) error {
	if err := requireJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	// Exactly one value: anything but the end of the body after it is an
	// error, including a second value.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return NewProblem(TypeMalformedJSON, fmt.Sprintf("unexpected data after the JSON value at byte offset %d", dec.InputOffset()))
	}
	return nil
}

// requireJSONContentType accepts application/json with no charset or a
// UTF-8 one (RFC 8259 §8.1: JSON exchanged between systems is UTF-8).
func requireJSONContentType(header string) error {
	const want = "the request body must be application/json"
	if header == "" {
		return NewProblem(TypeUnsupportedMediaType, want)
	}
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != "application/json" {
		return NewProblem(TypeUnsupportedMediaType, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return NewProblem(TypeUnsupportedMediaType, "the request body must be UTF-8 encoded JSON")
	}
	return nil
}

// decodeProblem turns a json.Decoder error into a problem. The decoder's
// own messages are not used: several quote the offending input.
func decodeProblem(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		invalidTo *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.As(err, &invalidTo):
		// A programming error in the handler, not the client's.
		return fmt.Errorf("decode JSON: %w", err)
	case errors.Is(err, io.EOF):
		return NewProblem(TypeMalformedJSON, "the request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return NewProblem(TypeMalformedJSON, "the JSON value ends early")
	case errors.As(err, &syntax):
		return NewProblem(TypeMalformedJSON, fmt.Sprintf("malformed JSON at byte offset %d", syntax.Offset))
	case errors.As(err, &typeErr):
		field := fieldPath(typeErr.Field)
		return NewProblem(TypeValidation, "a field has the wrong JSON type").
			WithErrors(FieldError{Field: field, Message: "must be " + jsonKind(typeErr.Type)})
	}
	if name, ok := unknownField(err); ok {
		return NewProblem(TypeUnknownField, fmt.Sprintf("unknown field %q", name)).
			WithErrors(FieldError{Field: name, Message: "unknown field"})
	}
	// Errors from a type's own UnmarshalJSON (a malformed time, say) may
	// quote the value: say only that a value is invalid.
	return NewProblem(TypeValidation, "a value in the request body has an invalid format")
}

// fieldPath turns encoding/json's dotted path to a wrongly typed value
// into the form the other validation errors use (rules[0].action). The
// path's shape differs between Go releases (newer ones include array
// indexes and map keys), and a map key is the client's own data (an
// address in recipient_data, say): the path stops before the first
// segment that is not a field name or an index.
func fieldPath(raw string) string {
	var b strings.Builder
	for seg := range strings.SplitSeq(raw, ".") {
		switch {
		case seg != "" && strings.Trim(seg, "0123456789") == "":
			if b.Len() == 0 {
				return "(body)"
			}
			b.WriteString("[" + seg + "]")
			continue
		case !isFieldName(seg):
			if b.Len() == 0 {
				return "(body)"
			}
			return b.String()
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return "(body)"
	}
	return b.String()
}

// isFieldName reports whether s looks like one of the API's JSON field
// names: lower-case letters, digits and underscores, not starting with a
// digit.
func isFieldName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// unknownField extracts the field name from encoding/json's
// DisallowUnknownFields error, which has no type of its own.
func unknownField(err error) (string, bool) {
	const prefix = "json: unknown field "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	name, uerr := strconv.Unquote(strings.TrimPrefix(msg, prefix))
	if uerr != nil {
		return "", false
	}
	return clipName(name), true
}

// clipName shortens a client-chosen field or parameter name before a
// problem repeats it.
func clipName(name string) string {
	if r := []rune(name); len(r) > maxEchoedFieldName {
		return string(r[:maxEchoedFieldName]) + "…"
	}
	return name
}

// jsonKind names the JSON kind a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another type"
}

// writeJSON answers v as JSON with the given status. v is encoded before
// anything is written, so an encoding failure still yields a clean 500.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// listOf wraps items as the {"data": [...]} body of list operations,
// mapping each with conv; an empty list is [] not null.
func listOf[T, U any](items []T, conv func(T) U) any {
	out := make([]U, 0, len(items))
	for _, it := range items {
		out = append(out, conv(it))
	}
	return struct {
		Data []U `json:"data"`
	}{out}
}

// requireFields returns a validation problem naming every empty required
// field (name, value pairs), or nil.
func requireFields(fields ...[2]string) *Problem {
	var missing []FieldError
	for _, f := range fields {
		if f[1] == "" {
			missing = append(missing, FieldError{Field: f[0], Message: "required"})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return NewProblem(TypeValidation, "the request is incomplete").WithErrors(missing...)
}

// listPage is the 200 body of every list operation: the items, never
// null, and the cursor of the next page, null on the last one.
type listPage[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// pageOf builds a list answer from a page of items and its next cursor
// ("" on the last page).
func pageOf[T any](items []T, next string) listPage[T] {
	if items == nil {
		items = []T{}
	}
	p := listPage[T]{Data: items}
	if next != "" {
		p.NextCursor = &next
	}
	return p
}

package audit

import "errors"

// ErrBadCursor is returned (possibly wrapped) by List when the cursor in
// the query is malformed, expired or belongs to another account; the HTTP
// layer answers it with 400 rather than 500.
var ErrBadCursor = errors.New("audit: bad cursor")

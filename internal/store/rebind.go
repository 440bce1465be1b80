package store

import "strings"

// rebindSQLite rewrites $1, $2 … as anonymous ? placeholders when they
// appear in order, each once (the shape of nearly every query). SQLite
// treats $N as a *named* parameter and looks names up in a linear list, so
// a statement with thousands of them (a multi-row insert) costs time
// quadratic in its parameter count; anonymous ? parameters are numbered
// directly. Queries that reuse or reorder parameters are left as they are
// (SQLite still binds $N positionally). Quoted text is skipped.
func rebindSQLite(q string) string {
	if !strings.Contains(q, "$") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q))
	next := 1
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(q[i+1:], c)
			if end < 0 {
				return q
			}
			b.WriteString(q[i : i+end+2])
			i += end + 1
		case c == '$' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			j := i + 1
			n := 0
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				n = n*10 + int(q[j]-'0')
				j++
			}
			if n != next {
				return q
			}
			next++
			b.WriteByte('?')
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

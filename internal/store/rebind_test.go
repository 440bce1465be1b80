package store

import "testing"

func TestRebindSQLite(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"no parameters", "SELECT 1", "SELECT 1"},
		{"in order", "INSERT INTO t VALUES ($1, $2), ($3, $4)", "INSERT INTO t VALUES (?, ?), (?, ?)"},
		{"two digits", "SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11", "SELECT ?,?,?,?,?,?,?,?,?,?,?"},
		{"reused kept", "SELECT * FROM t WHERE a = $1 OR b = $1", "SELECT * FROM t WHERE a = $1 OR b = $1"},
		{"reordered kept", "SELECT $2, $1", "SELECT $2, $1"},
		{"quoted dollar skipped", "SELECT '$1 costs', $1", "SELECT '$1 costs', ?"},
		{"quoted identifier", `SELECT "a$1" FROM t WHERE x = $1`, `SELECT "a$1" FROM t WHERE x = ?`},
		{"unterminated quote kept", "SELECT '$1", "SELECT '$1"},
	}
	for _, c := range cases {
		if got := rebindSQLite(c.in); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func FuzzRebindSQLite(f *testing.F) {
	f.Add("INSERT INTO t VALUES ($1, '$2', $2)")
	f.Fuzz(func(t *testing.T, q string) {
		out := rebindSQLite(q)
		if out != q && len(out) > len(q) {
			t.Fatalf("rebind grew the query: %q -> %q", q, out)
		}
	})
}

package httpapi

import "testing"

func TestAccessLogPathsHideClientChosenSegments(t *testing.T) {
	cases := []struct {
		name, path, pattern, want string
	}{
		{"exact route is logged as is", "/v1/audit-events", "GET /v1/audit-events", "/v1/audit-events"},
		{"an address in the path is replaced by the pattern", "/v1/suppressions/pat@example.org", "DELETE /v1/suppressions/{address}", "/v1/suppressions/{address}"},
		{"a token under a subtree route is dropped", "/t/c/AbCdEf0123456789", "/t/", "/t/"},
		{"an unmatched path keeps only its first segment", "/nope/secret-token", "", "/nope/…"},
		{"a long unmatched segment is cut", "/" + string(make([]byte, 100)), "", "/" + string(make([]byte, 64)) + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := loggedPath(c.path, c.pattern); got != c.want {
				t.Errorf("loggedPath(%q, %q) = %q, want %q", c.path, c.pattern, got, c.want)
			}
		})
	}
}

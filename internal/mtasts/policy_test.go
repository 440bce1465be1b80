package mtasts

import (
	"errors"
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		mode   string
		mx     []string
		maxAge time.Duration
		bad    bool
	}{
		{name: "enforce policy with CRLF lines", in: "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.example.net\r\nmax_age: 86400\r\n",
			mode: ModeEnforce, mx: []string{"mx1.example.org", "*.example.net"}, maxAge: 24 * time.Hour},
		{name: "LF lines, spaces around values, upper-case mx with a trailing dot", in: "version:STSv1\nmode:   testing  \nmx: MX.Example.ORG.\nmax_age:604800",
			mode: ModeTesting, mx: []string{"mx.example.org"}, maxAge: 7 * 24 * time.Hour},
		{name: "mode none needs no mx", in: "version: STSv1\nmode: none\nmax_age: 0\n", mode: ModeNone},
		{name: "unknown keys are ignored", in: "version: STSv1\nmode: enforce\nfuture_key: anything at all\nmx: a.example\nmax_age: 1\n",
			mode: ModeEnforce, mx: []string{"a.example"}, maxAge: time.Second},
		{name: "a repeated key keeps its first value", in: "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 60\nmax_age: 1\n",
			mode: ModeTesting, mx: []string{"a.example"}, maxAge: time.Minute},
		{name: "largest max_age", in: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557600\n", mode: ModeEnforce,
			mx: []string{"a.example"}, maxAge: 31557600 * time.Second},
		{name: "missing version is refused", in: "mode: enforce\nmx: a.example\nmax_age: 60\n", bad: true},
		{name: "another version is refused", in: "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 60\n", bad: true},
		{name: "unknown mode is refused", in: "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 60\n", bad: true},
		{name: "enforce without mx is refused", in: "version: STSv1\nmode: enforce\nmax_age: 60\n", bad: true},
		{name: "missing max_age is refused", in: "version: STSv1\nmode: enforce\nmx: a.example\n", bad: true},
		{name: "negative max_age is refused", in: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", bad: true},
		{name: "max_age over a year is refused", in: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", bad: true},
		{name: "max_age of more than ten digits is refused", in: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000000001\n", bad: true},
		{name: "a line without colon is refused", in: "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 60\n", bad: true},
		{name: "a wildcard not leftmost is refused", in: "version: STSv1\nmode: enforce\nmx: mx.*.example\nmax_age: 60\n", bad: true},
		{name: "a bare wildcard is refused", in: "version: STSv1\nmode: enforce\nmx: *\nmax_age: 60\n", bad: true},
		{name: "an empty label in mx is refused", in: "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 60\n", bad: true},
		{name: "HTML is refused", in: "<html><body>Not found</body></html>", bad: true},
		{name: "empty is refused", in: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse([]byte(tt.in))
			if tt.bad {
				if err == nil || !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse = %+v, %v; want a syntax error", p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != tt.mode || p.MaxAge != tt.maxAge || len(p.MX) != len(tt.mx) {
				t.Fatalf("Parse = %+v", p)
			}
			for i := range tt.mx {
				if p.MX[i] != tt.mx[i] {
					t.Errorf("mx[%d] = %q, want %q", i, p.MX[i], tt.mx[i])
				}
			}
		})
	}
}

func TestParseRefusesOversizedPolicy(t *testing.T) {
	t.Parallel()
	big := make([]byte, MaxPolicySize+1)
	if _, err := Parse(big); !errors.Is(err, ErrSyntax) {
		t.Fatalf("oversized policy: %v", err)
	}
}

func TestMXMatching(t *testing.T) {
	t.Parallel()
	p := &Policy{Mode: ModeEnforce, MX: []string{"mx.example.org", "*.example.net"}}
	tests := []struct {
		name string
		host string
		want bool
	}{
		{"an exact name matches", "mx.example.org", true},
		{"case and trailing dot do not matter", "MX.Example.Org.", true},
		{"another name does not match", "mx2.example.org", false},
		{"a wildcard matches one label", "mx1.example.net", true},
		{"a wildcard does not match the bare parent", "example.net", false},
		{"a wildcard does not match two labels", "a.mx1.example.net", false},
		{"a wildcard does not match a longer parent", "mx1.badexample.net", false},
		{"a suffix of an exact name does not match", "evilmx.example.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.Matches(tt.host); got != tt.want {
				t.Errorf("Matches(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

func TestTXTRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		txts []string
		id   string
		bad  bool
	}{
		{name: "a plain record", txts: []string{"v=STSv1; id=20160831085700Z;"}, id: "20160831085700Z"},
		{name: "spaces around separators and extension fields", txts: []string{"v=STSv1 ;id=abc123 ; ext=1"}, id: "abc123"},
		{name: "other TXT records are ignored", txts: []string{"v=spf1 -all", "v=STSv1; id=x1"}, id: "x1"},
		{name: "two STS records mean no policy", txts: []string{"v=STSv1; id=a", "v=STSv1; id=b"}, bad: true},
		{name: "no STS record means no policy", txts: []string{"v=spf1 -all"}, bad: true},
		{name: "a record without id is refused", txts: []string{"v=STSv1;"}, bad: true},
		{name: "an id with punctuation is refused", txts: []string{"v=STSv1; id=a-b"}, bad: true},
		{name: "an id longer than 32 is refused", txts: []string{"v=STSv1; id=123456789012345678901234567890123"}, bad: true},
		{name: "another version is refused", txts: []string{"v=STSv10; id=a"}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := recordID(tt.txts)
			if tt.bad {
				if err == nil {
					t.Fatalf("recordID = %q; want an error", id)
				}
				return
			}
			if err != nil || id != tt.id {
				t.Fatalf("recordID = %q, %v; want %q", id, err, tt.id)
			}
		})
	}
}

// FuzzParse: no input panics, and whatever parses is a usable policy.
func FuzzParse(f *testing.F) {
	f.Add([]byte("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.example.net\r\nmax_age: 86400\r\n"))
	f.Add([]byte("version: STSv1\nmode: none\nmax_age: 0\n"))
	f.Add([]byte("version:STSv1\nmode:testing\nmx:*.a\nmax_age:1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		if p.Mode != ModeEnforce && p.Mode != ModeTesting && p.Mode != ModeNone {
			t.Fatalf("mode %q", p.Mode)
		}
		if p.Mode != ModeNone && len(p.MX) == 0 || p.MaxAge < 0 || p.MaxAge > maxMaxAge*time.Second {
			t.Fatalf("policy %+v", p)
		}
		for _, mx := range p.MX {
			_ = p.Matches(mx)
		}
	})
}

// FuzzParseRecord: no TXT record panics.
func FuzzParseRecord(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;")
	f.Add("v=STSv1;id=;")
	f.Fuzz(func(t *testing.T, txt string) {
		if id, err := ParseRecord(txt); err == nil && (id == "" || len(id) > 32) {
			t.Fatalf("id %q", id)
		}
	})
}

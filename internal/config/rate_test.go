package config

import (
	"testing"
	"time"
)

func TestDomainRateParsing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want map[string]Rate
		bad  bool
	}{
		{name: "empty means no limit", in: "", want: map[string]Rate{}},
		{name: "a bare rate is the default", in: "50/s", want: map[string]Rate{"*": {50, time.Second}}},
		{name: "overrides per domain, lower-cased", in: "50/s, Gmail.com=20/s ,example.org=600/m,*=1/h",
			bad: true}, // the default is given twice (bare and *=)
		{name: "overrides per domain", in: "50/s, Gmail.com=20/s ,example.org=600/m",
			want: map[string]Rate{"*": {50, time.Second}, "gmail.com": {20, time.Second}, "example.org": {600, time.Minute}}},
		{name: "an unknown unit is refused", in: "gmail.com=20/d", bad: true},
		{name: "zero is refused", in: "gmail.com=0/s", bad: true},
		{name: "a missing unit is refused", in: "20", bad: true},
		{name: "a domain given twice is refused", in: "a.example=1/s,a.example=2/s", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Delivery{DomainRate: tt.in}.ParsedDomainRate()
			if tt.bad {
				if err == nil {
					t.Fatalf("parsed %v; want an error", got)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

package config

import (
	"strings"
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

func TestDeliveryFeatureKeysAreValidated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  map[string]string
		key  string // named in the error; "" means valid
	}{
		{name: "a smarthost with credentials is valid", set: map[string]string{"delivery.smarthost": "relay.example:587",
			"delivery.smarthost_username": "u", "delivery.smarthost_password": "p"}},
		{name: "a smarthost needs host:port", set: map[string]string{"delivery.smarthost": "relay.example"}, key: "delivery.smarthost"},
		{name: "credentials need a smarthost", set: map[string]string{"delivery.smarthost_username": "u", "delivery.smarthost_password": "p"},
			key: "delivery.smarthost_username"},
		{name: "a user name needs a password", set: map[string]string{"delivery.smarthost": "relay.example:587", "delivery.smarthost_username": "u"},
			key: "delivery.smarthost_password"},
		{name: "an unknown smarthost TLS mode is refused", set: map[string]string{"delivery.smarthost_tls": "none"}, key: "delivery.smarthost_tls"},
		{name: "a bad domain rate is refused", set: map[string]string{"delivery.domain_rate": "fast"}, key: "delivery.domain_rate"},
		{name: "a negative connection cap is refused", set: map[string]string{"delivery.max_conns": "-1"}, key: "delivery.max_conns"},
		{name: "the MTA-STS port must be a port", set: map[string]string{"delivery.mta_sts_port": "0"}, key: "delivery.mta_sts_port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			for k, v := range tt.set {
				if err := c.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error %v; want one naming %s", err, tt.key)
			}
		})
	}
}

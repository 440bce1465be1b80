package resolve_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/internal/resolve"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
)

func TestMailHostsAndTXT(t *testing.T) {
	srv, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Add(
		"clinic.example. 60 IN MX 20 backup.clinic.example.",
		"clinic.example. 60 IN MX 10 mx.clinic.example.",
		"clinic.example. 60 IN TXT \"v=spf1 -all\"",
		"implicit.example. 60 IN A 192.0.2.7",
		"nomail.example. 60 IN MX 0 .",
		"long.example. 60 IN TXT \"part one \" \"part two\"",
	); err != nil {
		t.Fatal(err)
	}
	r := resolve.New([]string{srv.Addr})
	ctx := context.Background()
	cases := []struct {
		domain string
		want   []string
		err    error
	}{
		{"clinic.example", []string{"mx.clinic.example", "backup.clinic.example"}, nil},
		{"implicit.example", []string{"implicit.example"}, nil},
		{"nomail.example", nil, resolve.ErrNullMX},
		{"missing.example", nil, resolve.ErrNoSuchDomain},
	}
	for _, c := range cases {
		hosts, err := r.MailHosts(ctx, c.domain)
		var names []string
		for _, h := range hosts {
			names = append(names, h.Name)
		}
		if !errors.Is(err, c.err) || !slices.Equal(names, c.want) {
			t.Errorf("%s: %v %v, want %v %v", c.domain, names, err, c.want, c.err)
		}
	}
	txt, err := r.TXT(ctx, "long.example")
	if err != nil || len(txt) != 1 || txt[0] != "part one part two" {
		t.Errorf("TXT: %q %v", txt, err)
	}
	if txt, err := r.TXT(ctx, "missing.example"); err != nil || len(txt) != 0 {
		t.Errorf("TXT of a missing name: %q %v", txt, err)
	}
}

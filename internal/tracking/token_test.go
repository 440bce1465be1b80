package tracking

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/store"
)

func testSigner() signer { return signer{key: []byte("0123456789abcdef0123456789abcdef")} }

func TestTokenRoundTrip(t *testing.T) {
	s := testSigner()
	acc, msg := store.NewID(), store.NewID()
	for _, r := range []Ref{
		{Purpose: PurposeOpen, AccountID: acc, MessageID: msg, Rcpt: 0},
		{Purpose: PurposeClick, AccountID: acc, MessageID: msg, Rcpt: 99, Link: 499},
		{Purpose: PurposeUnsubscribe, AccountID: acc, MessageID: msg, Rcpt: 7},
	} {
		tok, err := s.encode(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) > 80 || strings.ContainsAny(tok, "+/=") {
			t.Errorf("token %q: want at most 80 base64url characters", tok)
		}
		if strings.Contains(tok, acc) || strings.Contains(tok, msg) {
			t.Errorf("token %q shows an id in clear", tok)
		}
		got, err := s.decode(tok)
		if err != nil || got != r {
			t.Errorf("decode(encode(%+v)) = %+v, %v", r, got, err)
		}
	}
}

func TestTokenRefusals(t *testing.T) {
	s := testSigner()
	ref := Ref{Purpose: PurposeClick, AccountID: store.NewID(), MessageID: store.NewID(), Rcpt: 3, Link: 2}
	tok, err := s.encode(ref)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other := signer{key: []byte("another key of thirty-two bytes!")}
	forged, _ := other.encode(ref)
	cases := map[string]string{
		"empty":                             "",
		"not base64url":                     "a+b/c===",
		"truncated":                         tok[:len(tok)-4],
		"extended":                          tok + "AA",
		"signed with another key is forged": forged,
		"far too long":                      strings.Repeat("A", 500),
		"a line break inside (the decoder would skip it)": tok[:10] + "\r\n" + tok[10:],
	}
	for i := range raw {
		cases[fmt.Sprintf("a flipped bit at byte %d", i)] = flipped(i)
	}
	for name, bad := range cases {
		if _, err := s.decode(bad); err != ErrInvalidToken {
			t.Errorf("%s: decode = %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestTokenNeedsUUIDs(t *testing.T) {
	if _, err := testSigner().encode(Ref{Purpose: PurposeOpen, AccountID: "acct-1", MessageID: store.NewID()}); err == nil {
		t.Error("an account id that is not a UUID was encoded")
	}
}

func FuzzTokenDecode(f *testing.F) {
	s := testSigner()
	tok, _ := s.encode(Ref{Purpose: PurposeUnsubscribe, AccountID: store.NewID(), MessageID: store.NewID(), Rcpt: 1})
	f.Add(tok)
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := s.decode(in)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to itself.
		again, err := s.encode(r)
		if err != nil || again != in {
			t.Fatalf("decode(%q) = %+v, which encodes to %q (%v)", in, r, again, err)
		}
	})
}

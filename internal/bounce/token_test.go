package bounce_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/bounce"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/vault"
)

func newSigner(t *testing.T, key byte) *bounce.Signer {
	t.Helper()
	s, err := bounce.NewSigner(bytes.Repeat([]byte{key}, 32), "bounces.clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReturnPathRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSigner(t, 1)
	id := store.NewID()
	for _, c := range []struct {
		name  string
		index int
	}{{"the message alone", -1}, {"the message and its only recipient", 0}, {"a later recipient", 999}, {"the largest index", 0xffff}} {
		t.Run(c.name, func(t *testing.T) {
			rp := s.ReturnPath("acct", id, "reminders@clinic.example", c.index)
			local, domain, ok := strings.Cut(rp, "@")
			if !ok || domain != "bounces.clinic.example" || !strings.HasPrefix(local, "b+") || len(local) > 64 {
				t.Fatalf("return path %q", rp)
			}
			if local != strings.ToLower(local) {
				t.Errorf("return path %q is not lower case", rp)
			}
			for _, form := range []string{local, strings.ToUpper(local)} {
				tok, err := s.Parse(form)
				if err != nil || tok.MessageID != id || tok.Index != c.index {
					t.Errorf("parse %q: %+v, %v", form, tok, err)
				}
			}
		})
	}
	if rp := s.ReturnPath("acct", id, "reminders@clinic.example", 0x10000); rp == "reminders@clinic.example" {
		t.Error("an index too large for the token should fall back to the message alone, not to the From address")
	} else if tok, err := s.Parse(strings.Split(rp, "@")[0]); err != nil || tok.Index != -1 {
		t.Errorf("index too large: %+v, %v", tok, err)
	}
	if rp := s.ReturnPath("acct", "not-a-uuid", "reminders@clinic.example", 0); rp != "reminders@clinic.example" {
		t.Errorf("a message id that cannot be encoded keeps the From address, got %q", rp)
	}
}

func TestForgedReturnPathsAreRefused(t *testing.T) {
	t.Parallel()
	s, other := newSigner(t, 1), newSigner(t, 2)
	id := store.NewID()
	local, _ := s.Local(bounce.Token{MessageID: id, Index: 0})
	otherIndex, _ := s.Local(bounce.Token{MessageID: id, Index: 1})
	foreign, _ := other.Local(bounce.Token{MessageID: id, Index: 0})
	alphabet := "abcdefghijklmnopqrstuvwxyz234567"
	cases := map[string]string{
		"a token signed with another key": foreign,
		"no b+ prefix":                    strings.TrimPrefix(local, "b+"),
		"another prefix":                  "x+" + strings.TrimPrefix(local, "b+"),
		"a truncated token":               local[:len(local)-1],
		"an extended token":               local + "a",
		"an empty token":                  "b+",
		"not base32":                      "b+" + strings.Repeat("1", len(local)-2),
		"a plain address":                 "postmaster",
		"the index of one token, the MAC of another": otherIndex[:len(otherIndex)-16] + local[len(local)-16:],
	}
	// Every single-character change is refused.
	for i := 2; i < len(local); i++ {
		for _, c := range alphabet[:3] {
			if byte(c) == local[i] {
				continue
			}
			cases[fmt.Sprintf("character %d changed to %c", i, c)] = local[:i] + string(c) + local[i+1:]
		}
	}
	for name, forged := range cases {
		if tok, err := s.Parse(forged); err == nil {
			t.Errorf("%s: %q was accepted as %+v", name, forged, tok)
		}
	}
	if _, err := bounce.NewSigner(make([]byte, 16), "bounces.clinic.example"); err == nil {
		t.Error("a 16-byte key should be refused")
	}
}

func TestReturnPathKeyIsSealedAndShared(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		mk, err := vault.LoadOrCreateFileMasterKey(filepath.Join(dir, "master.key"), true)
		if err != nil {
			t.Fatal(err)
		}
		first, err := bounce.LoadKey(ctx, s, mk)
		if err != nil || len(first) != 32 {
			t.Fatalf("key %d bytes, %v", len(first), err)
		}
		second, err := bounce.LoadKey(ctx, s, mk) // another node
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("a second node got another key (%v)", err)
		}
		var sealed []byte
		if err := s.Reader().QueryRow(ctx, "SELECT sealed FROM platform_secrets WHERE name = 'bounce-return-path'").Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, first) {
			t.Error("the key is stored in the clear")
		}
		wrong, err := vault.LoadOrCreateFileMasterKey(filepath.Join(dir, "other.key"), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bounce.LoadKey(ctx, s, wrong); err == nil {
			t.Error("another master key opened the return-path key")
		}
	})
}

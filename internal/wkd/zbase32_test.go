package wkd_test

import (
	"encoding/base32"
	"testing"

	"github.com/sealpost/sealpost/internal/wkd"
)

func TestHashMatchesTheDraftsVectors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, local, want string }{
		// draft-koch-openpgp-webkey-service section 3.1.
		{"the draft's example", "Joe.Doe", "iy9q119eutrkn8s1mk4r39qejnbu3n5q"},
		{"upper-case ASCII is folded", "JOE.DOE", "iy9q119eutrkn8s1mk4r39qejnbu3n5q"},
		{"already lower case", "joe.doe", "iy9q119eutrkn8s1mk4r39qejnbu3n5q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := wkd.Hash(tt.local); got != tt.want {
				t.Errorf("Hash(%q) = %s, want %s", tt.local, got, tt.want)
			}
		})
	}
}

func TestHashFoldsOnlyASCII(t *testing.T) {
	t.Parallel()
	// The draft maps A-Z only: "É" is not "é" to the directory.
	if wkd.Hash("JOSÉ") == wkd.Hash("josé") {
		t.Error("non-ASCII letters were folded")
	}
	if wkd.Hash("JOSÉ") != wkd.Hash("josÉ") {
		t.Error("ASCII letters next to non-ASCII ones were not folded")
	}
}

func TestZBase32(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"nothing", nil, ""},
		{"a zero byte is two zero digits", []byte{0x00}, "yy"},
		{"all ones, the last digit padded with zero bits", []byte{0xff}, "9h"},
		{"five bytes make eight digits exactly", []byte{0xff, 0xff, 0xff, 0xff, 0xff}, "99999999"},
		{"bits run most significant first", []byte{0x08}, "by"}, // 00001 000(00)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := wkd.ZBase32(tt.in); got != tt.want {
				t.Errorf("zbase32(%x) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// z-base-32 is RFC 4648 base32's bit order with another alphabet and no
// padding, which gives an independent oracle for every input.
func FuzzZBase32(f *testing.F) {
	oracle := base32.NewEncoding("ybndrfg8ejkmcpqxot1uwisza345h769").WithPadding(base32.NoPadding)
	for _, seed := range [][]byte{nil, {0}, {1, 2, 3}, []byte("Joe.Doe"), make([]byte, 20)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := wkd.ZBase32(b), oracle.EncodeToString(b); got != want {
			t.Fatalf("zbase32(%x) = %q, want %q", b, got, want)
		}
	})
}

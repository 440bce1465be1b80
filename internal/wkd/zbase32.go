package wkd

import (
	"crypto/sha1"
	"strings"
)

// zbase32Alphabet is z-base-32's (Zooko O'Whielacronx, "Human-oriented
// base-32 encoding", 2002), which the WKD draft names in section 3.1.
const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// zbase32 encodes b five bits at a time, most significant bit first, the
// last group padded with zero bits; z-base-32 has no padding characters.
func zbase32(b []byte) string {
	var out strings.Builder
	out.Grow((len(b)*8 + 4) / 5)
	var acc uint16 // bits not yet written, right-aligned
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint16(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out.WriteByte(zbase32Alphabet[acc>>bits&31])
		}
	}
	if bits > 0 {
		out.WriteByte(zbase32Alphabet[acc<<(5-bits)&31])
	}
	return out.String()
}

// Hash is the hashed local part of a WKD URL (draft section 3.1): the
// local part with upper-case ASCII letters mapped to lower case (and
// nothing else changed), hashed with SHA-1 and encoded with z-base-32,
// always 32 characters. SHA-1 serves only to make a fixed-length file
// name here, not as a security function.
func Hash(local string) string {
	sum := sha1.Sum([]byte(asciiLower(local)))
	return zbase32(sum[:])
}

// asciiLower maps A-Z to a-z only: the draft leaves other characters as
// they are (strings.ToLower would fold non-ASCII letters too).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

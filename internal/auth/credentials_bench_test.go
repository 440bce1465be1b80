package auth_test

import (
	"testing"

	"github.com/sealpost/sealpost/internal/auth"
)

// BenchmarkHashPassword measures one argon2id hash at the stored
// parameters (19 MiB, 2 passes, 1 lane): the cost of a login attempt.
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := auth.HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSecretMatches measures an API secret check (SHA-256, constant
// time compare).
func BenchmarkSecretMatches(b *testing.B) {
	_, secret, hash, _ := auth.NewClientCredentials()
	for b.Loop() {
		auth.SecretMatches(hash, secret)
	}
}

package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: the OWASP minimum for argon2id (19 MiB, 2 passes,
// 1 lane). Stored in every hash, so raising them later re-hashes on login.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// ErrBadPasswordHash: a stored hash is not a PHC argon2id string.
var ErrBadPasswordHash = errors.New("auth: malformed password hash")

// HashPassword returns the argon2id hash of password in PHC string form
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC hash, in time
// independent of where the two differ.
func VerifyPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrBadPasswordHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrBadPasswordHash
	}
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil || mem == 0 || iters == 0 || threads == 0 {
		return false, ErrBadPasswordHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, ErrBadPasswordHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, ErrBadPasswordHash
	}
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Prefixes make leaked credentials recognisable to secret scanners.
const (
	ClientIDPrefix     = "spc_"
	ClientSecretPrefix = "sps_"
)

// NewClientCredentials returns a new client id, its secret (shown once)
// and the secret's hash (stored). The secret carries 256 random bits, so a
// fast hash (SHA-256) is as strong as a slow one; passwords, which people
// choose, get argon2id instead.
func NewClientCredentials() (id, secret string, secretHash []byte, err error) {
	idRand, err := randomToken(15)
	if err != nil {
		return "", "", nil, err
	}
	secRand, err := randomToken(32)
	if err != nil {
		return "", "", nil, err
	}
	secret = ClientSecretPrefix + secRand
	return ClientIDPrefix + idRand, secret, HashSecret(secret), nil
}

// HashSecret returns the stored form of a high-entropy secret.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// SecretMatches compares a presented secret with a stored hash in constant
// time.
func SecretMatches(storedHash []byte, presented string) bool {
	return subtle.ConstantTimeCompare(storedHash, HashSecret(presented)) == 1
}

// NewPassword returns a random password for bootstrap and resets: 24
// characters of base64url (144 bits).
func NewPassword() (string, error) {
	return randomToken(18)
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

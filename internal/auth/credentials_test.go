package auth_test

import (
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/auth"
)

func TestPasswordHashVerifies(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected PHC prefix: %s", h)
	}
	h2, _ := auth.HashPassword("correct horse battery staple")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	cases := []struct {
		name     string
		password string
		want     bool
	}{
		{"right password", "correct horse battery staple", true},
		{"wrong password", "correct horse battery stapler", false},
		{"empty password", "", false},
	}
	for _, c := range cases {
		ok, err := auth.VerifyPassword(h, c.password)
		if err != nil || ok != c.want {
			t.Errorf("%s: got %v, %v; want %v", c.name, ok, err, c.want)
		}
	}
}

func TestMalformedPasswordHashIsAnError(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=x,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=8,t=1,p=1$!!$AAAA"} {
		if _, err := auth.VerifyPassword(h, "x"); err == nil {
			t.Errorf("hash %q: want error", h)
		}
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	id, secret, hash, err := auth.NewClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, auth.ClientIDPrefix) || !strings.HasPrefix(secret, auth.ClientSecretPrefix) {
		t.Fatalf("prefixes: %s %s", id, secret)
	}
	if strings.Contains(id, ":") || strings.Contains(secret, ":") {
		t.Fatal("credentials must not contain ':' (X-API-Key separator)")
	}
	if !auth.SecretMatches(hash, secret) {
		t.Fatal("secret does not match its hash")
	}
	if auth.SecretMatches(hash, secret+"x") {
		t.Fatal("altered secret matches")
	}
	if string(hash) == secret || strings.Contains(string(hash), secret) {
		t.Fatal("hash holds the secret")
	}
}

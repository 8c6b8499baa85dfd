package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := HashPasswordWith("123456", TestArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	h2, _ := HashPasswordWith("123456", TestArgon2)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		pwd  string
		want bool
	}{{"123456", true}, {"123457", false}, {"", false}, {"1234567", false}} {
		ok, err := CheckPassword(h, tc.pwd)
		if err != nil || ok != tc.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tc.pwd, ok, err, tc.want)
		}
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	good, _ := HashPasswordWith("x", TestArgon2)
	parts := strings.Split(good, "$")
	for _, tc := range []struct{ name, hash string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuu"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"version", strings.Replace(good, "v=19", "v=16", 1)},
		{"memory bomb", "$argon2id$v=19$m=4194304,t=1,p=1$" + parts[4] + "$" + parts[5]},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + parts[4] + "$" + parts[5]},
		{"missing p", "$argon2id$v=19$m=64,t=1$" + parts[4] + "$" + parts[5]},
		{"bad salt", "$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5]},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$AAAA"},
		{"extra field", good + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CheckPassword(tc.hash, "x")
			if ok || !errors.Is(err, ErrBadHash) {
				t.Fatalf("CheckPassword = %v, %v; want false, ErrBadHash", ok, err)
			}
		})
	}
}

func TestHashPasswordRefusesWeakParams(t *testing.T) {
	if _, err := HashPasswordWith("x", Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}); err == nil {
		t.Fatal("4-byte salt accepted")
	}
}

// BenchmarkHashPassword measures the production cost (target 50-100 ms
// per hash on the build host).
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("123456"); err != nil {
			b.Fatal(err)
		}
	}
}

package mqttopts

import (
	"strings"
	"testing"
)

func TestHostKeepsClientIDCharacters(t *testing.T) {
	h := Host()
	if strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		t.Fatalf("Host() = %q: characters a client id does not take", h)
	}
}

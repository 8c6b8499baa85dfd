package mqttopts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var names = Names{CA: "--ca-file", Cert: "--cert-file", Key: "--key-file"}

func TestTLSNoFilesIsNone(t *testing.T) {
	cfg, err := TLS("", "", "", names)
	if cfg != nil || err != nil {
		t.Fatalf("no files: got %v, %v; want nil, nil", cfg, err)
	}
}

func TestTLSRefusals(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ca, cert, key string
		want          string
	}{
		{ca: filepath.Join(dir, "missing.pem"), want: "--ca-file: "},
		{ca: notPEM, want: "--ca-file " + notPEM + ": no PEM certificate"},
		{cert: "c.pem", want: "--cert-file and --key-file go together"},
		{key: "k.pem", want: "--cert-file and --key-file go together"},
		{cert: filepath.Join(dir, "c.pem"), key: filepath.Join(dir, "k.pem"), want: "--cert-file: "},
	} {
		cfg, err := TLS(c.ca, c.cert, c.key, names)
		if err == nil || !strings.Contains(err.Error(), c.want) || cfg != nil {
			t.Errorf("TLS(%q, %q, %q) = %v, %v; want an error with %q", c.ca, c.cert, c.key, cfg, err, c.want)
		}
	}
}

func TestHostKeepsClientIDCharacters(t *testing.T) {
	h := Host()
	if strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		t.Fatalf("Host() = %q: characters a client id does not take", h)
	}
}

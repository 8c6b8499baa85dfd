package tlsfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var names = Names{CA: "--ca-file", Cert: "--cert-file", Key: "--key-file"}

func TestNoFilesIsNone(t *testing.T) {
	cfg, err := Client("", "", "", names)
	if cfg != nil || err != nil {
		t.Fatalf("no files: got %v, %v; want nil, nil", cfg, err)
	}
}

func TestRefusals(t *testing.T) {
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
		cfg, err := Client(c.ca, c.cert, c.key, names)
		if err == nil || !strings.Contains(err.Error(), c.want) || cfg != nil {
			t.Errorf("Client(%q, %q, %q) = %v, %v; want an error with %q", c.ca, c.cert, c.key, cfg, err, c.want)
		}
	}
}

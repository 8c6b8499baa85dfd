package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/posagent/posagent/terminal/remote"
)

// cmdKeygen writes KID.key (the private key, base64, mode 0600) and KID.pub
// (the public key, base64) into DIR, and prints the --hq-key argument that
// factory-init takes. It never overwrites a key.
func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen", "--kid KID --out DIR",
		"Create an Ed25519 HQ signing key pair: DIR/KID.key (private, mode 0600) and\nDIR/KID.pub, and print the KID=BASE64 argument of posagentd factory-init\n--hq-key / --hq-root-key. It never overwrites a key.")
	kid := fs.String("kid", "hq-1", "key id, the envelope's kid")
	dir := fs.String("out", ".", "directory for KID.key and KID.pub")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	if !remote.ValidID(*kid) {
		fmt.Fprintf(stderr, "hqctl keygen: --kid %q: want 1-64 of [A-Za-z0-9._-]\n", *kid)
		return 1
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl keygen: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintf(stderr, "hqctl keygen: %v\n", err)
		return 1
	}
	keyPath := filepath.Join(*dir, *kid+".key")
	pubPath := filepath.Join(*dir, *kid+".pub")
	pubB64 := base64.StdEncoding.EncodeToString(pub)
	for _, f := range []struct {
		path string
		data string
		mode os.FileMode
	}{
		{keyPath, base64.StdEncoding.EncodeToString(priv.Seed()) + "\n", 0o600},
		{pubPath, pubB64 + "\n", 0o644},
	} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			fmt.Fprintf(stderr, "hqctl keygen: %v (refusing to overwrite a key)\n", err)
			return 1
		}
		_, err = fh.WriteString(f.data)
		if err == nil {
			err = fh.Sync()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(stderr, "hqctl keygen: %s: %v\n", f.path, err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s=%s\n", *kid, pubB64)
	return 0
}

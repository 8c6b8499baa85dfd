package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/posagent/posagent/storage"
	"golang.org/x/crypto/curve25519"
)

// defaultSupervisorPwd is the supervisor password of a new terminal
// (spec/terminal.md); the TECHNICIAN menu changes it.
const defaultSupervisorPwd = "123456"

// hqKeys collects repeated --hq-key KID=BASE64 flags.
type hqKeys map[string][]byte

func (h hqKeys) String() string { return fmt.Sprint(len(h), " keys") }

func (h hqKeys) Set(s string) error {
	kid, b64, ok := strings.Cut(s, "=")
	if !ok || kid == "" {
		return errors.New("want KID=BASE64")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return fmt.Errorf("key %q: want the base64 of a %d-byte Ed25519 public key", kid, ed25519.PublicKeySize)
	}
	if _, dup := h[kid]; dup {
		return fmt.Errorf("key %q given twice", kid)
	}
	h[kid] = k
	return nil
}

func cmdFactoryInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("factory-init", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory (created with mode 0700 if missing)")
	serial := fs.String("serial", "", "factory serial, [A-Za-z0-9-]{4,32}")
	pwdFile := fs.String("tech-pwd-file", "", "file holding the technician password (one trailing newline trimmed)")
	keys := hqKeys{}
	fs.Var(keys, "hq-key", "HQ command-signing public key as KID=BASE64 (repeatable)")
	if code, done := parseFlags(fs, args, "posagentd factory-init --data-dir DIR --serial SERIAL --hq-key KID=BASE64 [--hq-key …] --tech-pwd-file FILE",
		"Creates the factory identity (device keys, HQ keys, password hashes) and prints its public keys as one JSON line.", stdout, stderr); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "posagentd factory-init: "+format+"\n", a...)
		return exitError
	}
	switch {
	case *dataDir == "":
		return fail("--data-dir is required")
	case *serial == "":
		return fail("--serial is required")
	case *pwdFile == "":
		return fail("--tech-pwd-file is required")
	case len(keys) == 0:
		return fail("at least one --hq-key KID=BASE64 is required")
	}
	raw, err := os.ReadFile(*pwdFile)
	if err != nil {
		return fail("technician password: %v", err)
	}
	pwd := strings.TrimSuffix(string(raw), "\n")
	if pwd == "" {
		return fail("technician password file %s is empty", *pwdFile)
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fail("%v", err)
	}
	idPath, _, _ := storage.Paths(*dataDir)
	if _, err := os.Stat(idPath); err == nil {
		return fail("identity already exists at %s: refusing to overwrite it", idPath)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fail("device key: %v", err)
	}
	xPriv := make([]byte, curve25519.ScalarSize)
	if _, err := rand.Read(xPriv); err != nil {
		return fail("device key: %v", err)
	}
	xPub, err := curve25519.X25519(xPriv, curve25519.Basepoint)
	if err != nil {
		return fail("device key: %v", err)
	}
	techHash, err := storage.HashPassword(pwd)
	if err != nil {
		return fail("hash technician password: %v", err)
	}
	supHash, err := storage.HashPassword(defaultSupervisorPwd)
	if err != nil {
		return fail("hash supervisor password: %v", err)
	}
	id := storage.Identity{
		Serial:            *serial,
		DeviceEd25519Priv: edPriv,
		DeviceEd25519Pub:  edPub,
		DeviceX25519Priv:  xPriv,
		DeviceX25519Pub:   xPub,
		HQKeys:            keys,
		TechPwdHash:       techHash,
		SupervisorPwdHash: supHash,
		CreatedAt:         time.Now().UTC(),
	}
	if err := storage.CreateIdentity(idPath, id); err != nil {
		return fail("%v", err)
	}
	out, _ := json.Marshal(struct {
		Serial     string `json:"serial"`
		Ed25519Pub string `json:"ed25519_pub"`
		X25519Pub  string `json:"x25519_pub"`
	}{*serial, base64.StdEncoding.EncodeToString(edPub), base64.StdEncoding.EncodeToString(xPub)})
	fmt.Fprintln(stdout, string(out))
	return exitOK
}

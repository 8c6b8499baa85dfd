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
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"

	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal/remote"
)

// defaultSupervisorPwd is the supervisor password of a new terminal
// (spec/terminal.md); the TECHNICIAN menu changes it.
const defaultSupervisorPwd = "123456"

// hqKeys collects repeated --hq-key / --hq-root-key KID=BASE64 flags;
// all shares the kids of both flags, which must not repeat.
type hqKeys struct {
	keys map[string][]byte
	all  map[string]bool
}

func (h hqKeys) String() string { return fmt.Sprint(len(h.keys), " keys") }

func (h hqKeys) Set(s string) error {
	kid, b64, ok := strings.Cut(s, "=")
	if !ok || !remote.ValidID(kid) {
		return errors.New("want KID=BASE64 with a KID of 1-64 [A-Za-z0-9._-]")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return fmt.Errorf("key %q: want the base64 of a %d-byte Ed25519 public key", kid, ed25519.PublicKeySize)
	}
	if h.all[kid] {
		return fmt.Errorf("key %q given twice", kid)
	}
	h.all[kid] = true
	h.keys[kid] = k
	return nil
}

// policyFlag collects repeated --require TYPE=N flags.
type policyFlag map[string]int

func (p policyFlag) String() string { return fmt.Sprint(map[string]int(p)) }

func (p policyFlag) Set(s string) error {
	typ, ns, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil {
		return errors.New("want TYPE=N, e.g. unbind=2")
	}
	if _, err := remote.ParseCommandType(typ); err != nil {
		return err
	}
	if n < 1 || n > remote.MaxPolicy {
		return fmt.Errorf("%s=%d: want 1 to %d signatures", typ, n, remote.MaxPolicy)
	}
	p[typ] = n
	return nil
}

func cmdFactoryInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("factory-init", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory (created with mode 0700 if missing)")
	serial := fs.String("serial", "", "factory serial, [A-Za-z0-9-]{4,32}")
	pwdFile := fs.String("tech-pwd-file", "", "file holding the technician password (one trailing newline trimmed)")
	kids := map[string]bool{}
	ops := hqKeys{keys: map[string][]byte{}, all: kids}
	roots := hqKeys{keys: map[string][]byte{}, all: kids}
	policy := policyFlag{}
	fs.Var(ops, "hq-key", "HQ ops key (signs every command but hq_keys) as KID=BASE64 (repeatable)")
	fs.Var(roots, "hq-root-key", "HQ root key (also signs hq_keys: key rotation and policy) as KID=BASE64 (repeatable)")
	fs.Var(policy, "require", "signature policy TYPE=N: N distinct HQ signatures for TYPE, e.g. unbind=2 (repeatable; default 1)")
	if code, done := parseFlags(fs, args, "posagentd factory-init --data-dir DIR --serial SERIAL --hq-key KID=BASE64 [--hq-key …] "+
		"[--hq-root-key KID=BASE64 …] [--require TYPE=N …] --tech-pwd-file FILE",
		"Creates the factory identity (device keys, HQ keys with their roles, the signature policy, password hashes) "+
			"and prints its public keys as one JSON line.", stdout, stderr); done {
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
	case len(kids) == 0:
		return fail("at least one --hq-key or --hq-root-key KID=BASE64 is required")
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	}
	// The keys and policy are checked before anything is generated: a
	// policy no key set can meet would lock the terminal out of a command.
	probe := storage.Identity{HQKeys: ops.keys, HQRootKeys: roots.keys, Policy: policy}
	if err := probe.FactoryKeyring().Validate(); err != nil {
		return fail("%v", err)
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
		HQKeys:            ops.keys,
		HQRootKeys:        roots.keys,
		Policy:            policy,
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

package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/posagent/posagent/terminal/remote"
)

const hqKeysAbout = `Rotate HQ keys or change the signature policy on terminals with a signed
hq_keys command (remote.md "Keys and policy"). It must be signed by a root key
(factory-init --hq-root-key). Each terminal answers succeeded with the key ids
by role and the policy now in force, printed as keys=… policy=…; a revoked kid
is unknown to the terminal from then on (its commands get no ack).

  --add KID=BASE64:ROLE   add a key (ROLE ops or root; BASE64 as keygen prints it)
  --add-pub DIR/KID.pub   add the ops key keygen wrote (role with --role)
  --revoke KID            revoke a key (revoking the last root key is refused)
  --require TYPE=N        N distinct signatures for TYPE (1 = the default)

Exit status as for unbind.`

// cmdHQKeys signs one hq_keys command per serial and sends them like
// unbind does.
func cmdHQKeys(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("hq-keys", "--broker URL --key DIR/ROOT.key --device-keys FILE --serial S [--serial …] [--add …] [--revoke …] [--require …]", hqKeysAbout)
	var sf sendFlags
	sf.register(fs, "root signing key, DIR/KID.key (required; repeatable if the policy needs several)",
		"command validity, at most 168h (7 days)", "terminals' public keys (required), as for unbind")
	var adds, addPubs, revokes, requires stringList
	fs.Var(&adds, "add", "key to add, KID=BASE64:ROLE (repeatable)")
	fs.Var(&addPubs, "add-pub", "key to add from keygen's DIR/KID.pub (repeatable)")
	role := fs.String("role", string(remote.RoleOps), "role of the --add-pub keys: ops or root")
	fs.Var(&revokes, "revoke", "kid to revoke (repeatable)")
	fs.Var(&requires, "require", "policy TYPE=N (repeatable)")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hqctl hq-keys: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := sf.readSerialsFile(); err != nil {
		return usageErr("%v", err)
	}
	if len(sf.serials) == 0 || len(sf.keyPaths) == 0 || *sf.wait <= 0 {
		return usageErr("--serial (or --serials-file), --key and a positive --wait are required")
	}
	if err := checkTTL(*sf.ttl); err != nil {
		return usageErr("%v", err)
	}
	var a remote.HQKeysArgs
	for _, s := range adds {
		kid, rest, ok1 := strings.Cut(s, "=")
		b64, r, ok2 := strings.Cut(rest, ":")
		pub, err := base64.StdEncoding.DecodeString(b64)
		if !ok1 || !ok2 || err != nil || len(pub) != ed25519.PublicKeySize {
			return usageErr("--add %q: want KID=BASE64:ROLE with a 32-byte Ed25519 key", s)
		}
		a.Add = append(a.Add, remote.HQKey{KID: kid, Pub: pub, Role: remote.Role(r)})
	}
	for _, p := range addPubs {
		data, err := os.ReadFile(p)
		if err != nil {
			return usageErr("%v", err)
		}
		pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return usageErr("--add-pub %s: want keygen's base64 Ed25519 public key", p)
		}
		kid := strings.TrimSuffix(filepath.Base(p), ".pub")
		a.Add = append(a.Add, remote.HQKey{KID: kid, Pub: pub, Role: remote.Role(*role)})
	}
	a.Revoke = revokes
	for _, r := range requires {
		typ, n, ok := strings.Cut(r, "=")
		count, err := strconv.Atoi(n)
		if !ok || err != nil {
			return usageErr("--require %q: want TYPE=N", r)
		}
		if a.Policy == nil {
			a.Policy = map[remote.CommandType]int{}
		}
		a.Policy[remote.CommandType(typ)] = count
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return usageErr("%v", err)
	}
	// The terminal's own syntax check, before anything is signed.
	if _, err := remote.ParseHQKeysArgs(raw); err != nil {
		return usageErr("%v", err)
	}
	return sf.send("hq-keys", remote.TypeHQKeys, raw, stdout, stderr, usageErr)
}

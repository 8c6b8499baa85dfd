package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/terminal/remote"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newCommandID is <type>-<serial>-<unix nanos>: unique per run and at most
// 7+1+32+1+19 = 60 characters, inside the 64 the id syntax allows.
func newCommandID(typ remote.CommandType, serial string, now time.Time) string {
	return fmt.Sprintf("%s-%s-%d", typ, serial, now.UnixNano())
}

// signCommand builds, self-checks and seals one command with every signer
// (one signer: the single-signature form). The self-check runs the
// terminal's own check table (remote.CheckCommand) so that hqctl never
// sends a command a terminal would reject as invalid.
func signCommand(signers []remote.Signer, serial string, typ remote.CommandType, id string, args json.RawMessage, now time.Time, ttl time.Duration) ([]byte, error) {
	if !remote.ValidSerial(serial) {
		return nil, fmt.Errorf("serial %q: want 4-32 of [A-Za-z0-9-]", serial)
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	if len(signers) == 0 {
		return nil, errors.New("no signing key")
	}
	now = now.UTC().Truncate(time.Second)
	c := remote.Command{V: remote.Version, ID: id, Type: typ, Serial: serial,
		IssuedAt: now, ExpiresAt: now.Add(ttl), Args: args}
	payload, err := c.Payload()
	if err != nil {
		return nil, err
	}
	if _, v := remote.CheckCommand(payload, serial, now, nil); !v.OK() {
		return nil, fmt.Errorf("command %s for %s: %s (%s)", id, serial, v.Reason, v.Detail)
	}
	if len(signers) == 1 {
		return remote.Seal(signers[0].KID, signers[0].Priv, payload)
	}
	return remote.SealMulti(payload, signers...)
}

// loadSigners reads every --key (with the kids of --kid, in order, or the
// key file names).
func loadSigners(paths, kids []string) ([]remote.Signer, error) {
	if len(kids) > len(paths) {
		return nil, errors.New("more --kid than --key")
	}
	var out []remote.Signer
	for i, p := range paths {
		kid := ""
		if i < len(kids) {
			kid = kids[i]
		}
		k, err := command.LoadKey(p, kid)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

const signAbout = `Print one signed command envelope (for scripts, tests and co-signing).

With --cosign, add one signature (the first --key) to an envelope someone
else signed: the second person of a two-signature policy (remote.md "Keys and
policy", e.g. factory-init --require unbind=2) reads what the command does on
stderr and prints the co-signed envelope, to be sent with "hqctl send".
Several --key flags sign a new command with every key at once.`

// cmdSign prints one signed command envelope, or co-signs one.
func cmdSign(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("sign", "--key DIR/KID.key [--key …] --serial S --type TYPE [--args JSON] [--id ID] [--ttl 24h]\n"+
		"       hqctl sign --cosign FILE|- --key DIR/KID.key", signAbout)
	var keyPaths, kids stringList
	fs.Var(&keyPaths, "key", "HQ signing key, DIR/KID.key from keygen (required; repeatable: one signature each)")
	fs.Var(&kids, "kid", "key id of the matching --key (default: the key file name without .key)")
	serial := fs.String("serial", "", "target terminal serial (required)")
	typ := fs.String("type", "", "command type: unbind, status, provision or hq_keys (required)")
	argsJSON := fs.String("args", "{}", "command args, a JSON object")
	id := fs.String("id", "", "command id (default <type>-<serial>-<unix nanos>)")
	ttl := fs.Duration("ttl", 24*time.Hour, "validity: expires_at = issued_at + ttl, at most 168h (7 days)")
	cosign := fs.String("cosign", "", "envelope file (- for stdin) to add a signature to, instead of signing a new command")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hqctl sign: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if len(keyPaths) == 0 {
		return fail("--key is required")
	}
	signers, err := loadSigners(keyPaths, kids)
	if err != nil {
		return fail("%v", err)
	}
	if *cosign != "" {
		if len(signers) != 1 || *serial != "" || *typ != "" {
			return fail("--cosign takes one --key and no --serial or --type (the envelope says what it is)")
		}
		return cosignEnvelope(*cosign, signers[0], stdin, stdout, stderr)
	}
	if *serial == "" || *typ == "" {
		return fail("--key, --serial and --type are required")
	}
	t, err := remote.ParseCommandType(*typ)
	if err != nil {
		return fail("--type: %v", err)
	}
	now := time.Now()
	if *id == "" {
		*id = newCommandID(t, *serial, now)
	}
	env, err := signCommand(signers, *serial, t, *id, json.RawMessage(*argsJSON), now, *ttl)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "%s\n", env)
	return exitOK
}

// cosignEnvelope adds s's signature to the envelope in path and prints
// it, after saying on stderr what is being approved: a second person signs
// a command, not a blob.
func cosignEnvelope(path string, s remote.Signer, stdin io.Reader, stdout, stderr io.Writer) int {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, remote.MaxEnvelope+2))
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hqctl sign: %v\n", err)
		return exitUsage
	}
	raw = bytes.TrimRight(raw, "\r\n")
	env, err := remote.Decode(raw)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl sign: --cosign %s: %v\n", path, err)
		return exitUsage
	}
	var c remote.Command
	if err := json.Unmarshal(env.Payload, &c); err != nil {
		fmt.Fprintf(stderr, "hqctl sign: --cosign %s: the payload is not a command: %v\n", path, err)
		return exitUsage
	}
	if _, v := remote.CheckCommand(env.Payload, c.Serial, time.Now(), nil); !v.OK() {
		fmt.Fprintf(stderr, "hqctl sign: --cosign %s: command %s would be rejected: %s (%s)\n", path, c.ID, v.Reason, v.Detail)
		return exitUsage
	}
	var signed []string
	for _, g := range env.Signatures() {
		signed = append(signed, g.KID)
	}
	out, err := remote.AddSignature(raw, s)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl sign: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "hqctl sign: co-signed as %s: %s %s for %s, args %s, expires %s (signed before by %s)\n",
		s.KID, c.Type, c.ID, c.Serial, c.Args, c.ExpiresAt.Format(time.RFC3339), strings.Join(signed, ", "))
	fmt.Fprintf(stdout, "%s\n", out)
	return exitOK
}

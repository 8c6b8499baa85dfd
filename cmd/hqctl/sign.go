package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newCommandID is <type>-<serial>-<unix nanos>: unique per run and at most
// 6+1+32+1+19 = 59 characters, inside the 64 the id syntax allows.
func newCommandID(typ, serial string, now time.Time) string {
	return fmt.Sprintf("%s-%s-%d", typ, serial, now.UnixNano())
}

// signCommand builds, self-checks and seals one command. The self-check
// runs the terminal's own check table (remote.CheckCommand) so that hqctl
// never sends a command a terminal would reject as invalid.
func signCommand(kid string, priv ed25519.PrivateKey, serial, typ, id string, args json.RawMessage, now time.Time, ttl time.Duration) ([]byte, error) {
	if !remote.ValidSerial(serial) {
		return nil, fmt.Errorf("serial %q: want 4-32 of [A-Za-z0-9-]", serial)
	}
	if ttl <= 0 {
		return nil, errors.New("ttl must be positive")
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
	return remote.Seal(kid, priv, payload)
}

// cmdSign prints one signed command envelope, for scripts and tests.
func cmdSign(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "HQ signing key, DIR/KID.key from keygen (required)")
	kid := fs.String("kid", "", "key id (default: the key file name without .key)")
	serial := fs.String("serial", "", "target terminal serial (required)")
	typ := fs.String("type", "", "command type: unbind, status or provision (required)")
	argsJSON := fs.String("args", "{}", "command args, a JSON object")
	id := fs.String("id", "", "command id (default <type>-<serial>-<unix nanos>)")
	ttl := fs.Duration("ttl", 24*time.Hour, "validity: expires_at = issued_at + ttl")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *keyPath == "" || *serial == "" || *typ == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hqctl sign: --key, --serial and --type are required")
		return exitUsage
	}
	k, priv, err := loadSigningKey(*keyPath, *kid)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl sign: %v\n", err)
		return exitUsage
	}
	now := time.Now()
	if *id == "" {
		*id = newCommandID(*typ, *serial, now)
	}
	env, err := signCommand(k, priv, *serial, *typ, *id, json.RawMessage(*argsJSON), now, *ttl)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl sign: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s\n", env)
	return exitOK
}

package main

import (
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/posagent/posagent/terminal/remote"
)

// cmdUnbind signs one unbind command per serial, sends them over one
// connection and prints every ack as it arrives.
func cmdUnbind(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("unbind", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf mqttFlags
	mf.register(fs)
	var serials stringList
	fs.Var(&serials, "serial", "terminal serial (repeatable)")
	serialsFile := fs.String("serials-file", "", "file with one serial per line (# comments)")
	keyPath := fs.String("key", "", "HQ signing key, DIR/KID.key from keygen (required)")
	kid := fs.String("kid", "", "key id (default: the key file name without .key)")
	unsettled := fs.String("unsettled", remote.UnsettledSettle, "open batch: settle, refuse or force")
	reason := fs.String("reason", "", "reason recorded with the unbind (≤ 200 characters)")
	ttl := fs.Duration("ttl", 24*time.Hour, "command validity; a terminal offline longer rejects it as expired")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the final acks")
	jsonOut := fs.Bool("json", false, "print each ack payload as one JSON line")
	deviceKeysPath := fs.String("device-keys", "", "terminals' public keys (JSON serial -> base64, or factory-init JSON lines); acks that do not verify are flagged UNVERIFIED and not counted")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hqctl unbind: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *serialsFile != "" {
		more, err := readSerials(*serialsFile)
		if err != nil {
			return usageErr("%v", err)
		}
		serials = append(serials, more...)
	}
	if len(serials) == 0 {
		return usageErr("no serial: give --serial or --serials-file")
	}
	if *keyPath == "" {
		return usageErr("--key is required")
	}
	if *wait <= 0 || *ttl <= 0 {
		return usageErr("--wait and --ttl must be positive")
	}
	if utf8.RuneCountInString(*reason) > remote.MaxUnbindReason {
		return usageErr("--reason is longer than %d characters", remote.MaxUnbindReason)
	}
	switch *unsettled {
	case remote.UnsettledSettle, remote.UnsettledRefuse, remote.UnsettledForce:
	default:
		return usageErr("--unsettled %q: want settle, refuse or force", *unsettled)
	}
	k, priv, err := loadSigningKey(*keyPath, *kid)
	if err != nil {
		return usageErr("%v", err)
	}
	var deviceKeys map[string]ed25519.PublicKey
	if *deviceKeysPath != "" {
		if deviceKeys, err = loadDeviceKeys(*deviceKeysPath); err != nil {
			return usageErr("%v", err)
		}
	}
	argsJSON, err := json.Marshal(remote.UnbindArgs{Reason: *reason, Unsettled: *unsettled})
	if err != nil {
		return usageErr("%v", err)
	}
	seen := map[string]bool{}
	var jobs []job
	now := time.Now()
	for _, s := range serials {
		if seen[s] {
			continue
		}
		seen[s] = true
		id := newCommandID(remote.TypeUnbind, s, now)
		env, err := signCommand(k, priv, s, remote.TypeUnbind, id, argsJSON, now, *ttl)
		if err != nil {
			return usageErr("%v", err)
		}
		jobs = append(jobs, job{serial: s, cmdID: id, envelope: env})
	}
	return dispatch(jobs, dispatchOpts{mqtt: &mf, wait: *wait, json: *jsonOut, deviceKeys: deviceKeys,
		stdout: stdout, stderr: stderr, name: "unbind"})
}

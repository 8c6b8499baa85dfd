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

const unbindAbout = `Sign one unbind command per serial, send them over one connection and
print every ack as it arrives. An ack counts only when it verifies with that
terminal's device key from --device-keys (factory-init's JSON lines, or a JSON
object serial -> ed25519_pub): anything else is printed UNVERIFIED, never
counted, and makes the exit status non-zero.

Exit status: 0 every serial succeeded, 1 a serial failed or was rejected, an
unverified ack arrived, or a broker error, 2 usage, 3 --wait ran out.`

// cmdUnbind signs one unbind command per serial, sends them over one
// connection and prints every ack as it arrives.
func cmdUnbind(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("unbind", "--broker URL --key DIR/KID.key --device-keys FILE --serial S [--serial S2 … | --serials-file F] [flags]", unbindAbout)
	var sf sendFlags
	sf.register(fs, "HQ signing key, DIR/KID.key from keygen (required; repeatable for a policy that needs several signatures)",
		"command validity, at most 168h (7 days); a terminal offline longer rejects it as expired",
		"terminals' public keys (required): factory-init JSON lines, or a JSON object serial -> base64 ed25519_pub")
	unsettled := fs.String("unsettled", string(remote.UnsettledSettle), "open batch: settle, refuse or force")
	reason := fs.String("reason", "", "reason recorded with the unbind (≤ 200 characters)")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hqctl unbind: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := sf.readSerialsFile(); err != nil {
		return usageErr("%v", err)
	}
	if len(sf.serials) == 0 {
		return usageErr("no serial: give --serial or --serials-file")
	}
	if len(sf.keyPaths) == 0 {
		return usageErr("--key is required")
	}
	if *sf.wait <= 0 {
		return usageErr("--wait must be positive")
	}
	if err := checkTTL(*sf.ttl); err != nil {
		return usageErr("%v", err)
	}
	if utf8.RuneCountInString(*reason) > remote.MaxUnbindReason {
		return usageErr("--reason is longer than %d characters", remote.MaxUnbindReason)
	}
	policy, err := remote.ParseUnsettledPolicy(*unsettled)
	if err != nil || *unsettled == "" {
		return usageErr("--unsettled %q: want settle, refuse or force", *unsettled)
	}
	argsJSON, err := json.Marshal(remote.UnbindArgs{Reason: *reason, Unsettled: policy})
	if err != nil {
		return usageErr("%v", err)
	}
	return sf.send("unbind", remote.TypeUnbind, argsJSON, stdout, stderr, usageErr)
}

// sendFlags are the flags of the commands that sign one command per
// serial and send them all (unbind, hq-keys): broker, serials, signing
// keys, validity, wait, output and the device keys acks must verify with.
type sendFlags struct {
	mqtt                    mqttFlags
	serials, keyPaths, kids stringList
	serialsFile, deviceKeys *string
	ttl, wait               *time.Duration
	json                    *bool
}

// register adds the flags to fs with the help texts that differ by command.
func (f *sendFlags) register(fs *flag.FlagSet, keyHelp, ttlHelp, deviceKeysHelp string) {
	f.mqtt.register(fs)
	fs.Var(&f.serials, "serial", "terminal serial (repeatable)")
	f.serialsFile = fs.String("serials-file", "", "file with one serial per line (# comments)")
	fs.Var(&f.keyPaths, "key", keyHelp)
	fs.Var(&f.kids, "kid", "key id of the matching --key (default: the key file name without .key)")
	f.ttl = fs.Duration("ttl", 24*time.Hour, ttlHelp)
	f.wait = fs.Duration("wait", 2*time.Minute, "how long to wait for the final acks")
	f.json = fs.Bool("json", false, "print each ack payload as one JSON line")
	f.deviceKeys = fs.String("device-keys", "", deviceKeysHelp)
}

// readSerialsFile adds the serials of --serials-file, if given.
func (f *sendFlags) readSerialsFile() error {
	if *f.serialsFile == "" {
		return nil
	}
	more, err := readSerials(*f.serialsFile)
	if err != nil {
		return err
	}
	f.serials = append(f.serials, more...)
	return nil
}

// send signs one command of typ with args per serial and sends them
// (dispatch); what fails before anything is sent is a usage error.
func (f *sendFlags) send(name string, typ remote.CommandType, args json.RawMessage, stdout, stderr io.Writer, usageErr func(string, ...any) int) int {
	deviceKeys, err := requireDeviceKeys(*f.deviceKeys)
	if err != nil {
		return usageErr("%v", err)
	}
	signers, err := loadSigners(f.keyPaths, f.kids)
	if err != nil {
		return usageErr("%v", err)
	}
	jobs, err := signJobs(f.serials, signers, typ, args, *f.ttl)
	if err != nil {
		return usageErr("%v", err)
	}
	return dispatch(jobs, dispatchOpts{mqtt: &f.mqtt, wait: *f.wait, json: *f.json, deviceKeys: deviceKeys,
		stdout: stdout, stderr: stderr, name: name})
}

// signJobs signs one command of typ per distinct serial.
func signJobs(serials []string, signers []remote.Signer, typ remote.CommandType, args json.RawMessage, ttl time.Duration) ([]job, error) {
	seen := map[string]bool{}
	var jobs []job
	now := time.Now()
	for _, s := range serials {
		if seen[s] {
			continue
		}
		seen[s] = true
		id := newCommandID(typ, s, now)
		env, err := signCommand(signers, s, typ, id, args, now, ttl)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job{serial: s, cmdID: id, envelope: env})
	}
	return jobs, nil
}

// requireDeviceKeys loads the device-key registry, which is not optional:
// an ack HQ cannot verify with the terminal's own key is not an answer
// (anyone with broker credentials can publish one, as a forged proof of
// wipe).
func requireDeviceKeys(path string) (map[string]ed25519.PublicKey, error) {
	if path == "" {
		return nil, fmt.Errorf("--device-keys FILE is required: acks count only when they verify with the terminal's device key " +
			"(the file holds posagentd factory-init's JSON lines, or a JSON object serial -> ed25519_pub)")
	}
	return loadDeviceKeys(path)
}

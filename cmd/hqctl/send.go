package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

const sendAbout = `Publish an envelope made elsewhere (hqctl sign, a co-signed command) to one
terminal byte for byte, and wait for its final ack as unbind does: an ack
counts only when it verifies with the terminal's device key (--device-keys).`

// cmdSend publishes an envelope made elsewhere (hqctl sign, a test) to one
// terminal, byte for byte, and waits for its final ack like unbind does.
func cmdSend(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("send", "--broker URL --serial S --device-keys FILE [--in FILE|-] [--wait 2m] [--json]", sendAbout)
	var mf mqttFlags
	mf.register(fs)
	serial := fs.String("serial", "", "terminal serial (required)")
	in := fs.String("in", "-", "envelope file, - for stdin")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the final ack")
	jsonOut := fs.Bool("json", false, "print each ack payload as one JSON line")
	deviceKeysPath := fs.String("device-keys", "", "terminals' public keys (required), as for unbind")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	if !remote.ValidSerial(*serial) || fs.NArg() > 0 || *wait <= 0 {
		fmt.Fprintln(stderr, "hqctl send: --serial SERIAL (4-32 of [A-Za-z0-9-]) and a positive --wait are required")
		return exitUsage
	}
	deviceKeys, err := requireDeviceKeys(*deviceKeysPath)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl send: %v\n", err)
		return exitUsage
	}
	var env []byte
	if *in == "-" {
		env, err = io.ReadAll(io.LimitReader(stdin, remote.MaxEnvelope+2))
	} else {
		env, err = os.ReadFile(*in)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hqctl send: %v\n", err)
		return exitUsage
	}
	env = bytes.TrimRight(env, "\r\n")
	// The id is read from the unverified payload only to match the ack;
	// a payload without one is answered with cmd_id "".
	var cmdID string
	if e, err := remote.Decode(env); err == nil {
		var p struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(e.Payload, &p) == nil && remote.ValidID(p.ID) {
			cmdID = p.ID
		}
	}
	return dispatch([]job{{serial: *serial, cmdID: cmdID, envelope: env}}, dispatchOpts{mqtt: &mf, wait: *wait,
		json: *jsonOut, deviceKeys: deviceKeys, stdout: stdout, stderr: stderr, name: "send"})
}

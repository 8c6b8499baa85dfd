// Command hqctl is the HQ side of posagent at an operator's desk:
// command-signing keys, signed commands to terminals, hqd's API (jobs,
// fleet, activation codes, audit), and an embedded lab broker for demos
// and tests. It links no database: hqd keeps the fleet. README.md summarises the remote
// contract (spec/remote.md) it speaks.
package main

import (
	"fmt"
	"io"
	"os"
)

var version = "dev"

const usage = `hqctl — HQ tools for posagent terminals

Usage:
  hqctl keygen --kid KID --out DIR      create an Ed25519 HQ signing key pair
  hqctl unbind --broker URL --key DIR/KID.key [--key …] --device-keys FILE
               --serial S [--serial S2 … | --serials-file F]
               [--unsettled settle|refuse|force] [--reason TEXT] [--ttl 24h] [--wait 2m] [--json]
                                        unbind terminals and print their verified acks; exit 0 all
                                        succeeded, 1 any failed/rejected/unverified, 2 usage, 3 timeout
  hqctl hq-keys --broker URL --key DIR/ROOT.key --device-keys FILE --serial S
               [--add KID=BASE64:ROLE | --add-pub DIR/KID.pub] [--revoke KID] [--require TYPE=N]
                                        rotate HQ keys or change the signature policy (root-signed)
  hqctl status --broker URL [--json] [--wait 2s]
                                        table of the terminals' retained status
  hqctl sign --key DIR/KID.key [--key …] --serial S --type unbind|status|provision|hq_keys
               [--args JSON] [--id ID] [--ttl 24h]
                                        print one signed command envelope (ttl at most 7 days)
  hqctl sign --cosign FILE|- --key DIR/KID.key
                                        add a second person's signature to an envelope
  hqctl send --broker URL --serial S --device-keys FILE [--in FILE|-] [--wait 2m] [--json]
                                        publish an envelope as is and wait for its final ack
  hqctl broker [--listen ADDR]          run an embedded lab MQTT broker (not for production)
  hqctl version

Over hqd's HTTP API (jobs, fleet, activation codes, audit):
  ` + apiUsage + `
Broker flags of unbind, hq-keys, status and send: --broker URL, --ca-file,
--cert-file, --key-file (TLS, ssl://), --username (default hq), --password (or
$HQCTL_MQTT_PASSWORD).
Run "hqctl COMMAND --help" for a command's flags.
`

func main() { os.Exit(runIO(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	return runIO(args, os.Stdin, stdout, stderr)
}

func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "unbind":
		return cmdUnbind(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "sign":
		return cmdSign(args[1:], stdin, stdout, stderr)
	case "hq-keys":
		return cmdHQKeys(args[1:], stdout, stderr)
	case "send":
		return cmdSend(args[1:], stdin, stdout, stderr)
	case "activation-code", "serve", "terminal-state":
		// The JSON state file and its activation service are gone: hqd
		// answers activation requests (internal/hq/activation).
		fmt.Fprintf(stderr, "hqctl %s: removed: run hqd (hqd run --config F) and issue codes with \"hqctl code issue\"; hqctl fleet state SERIAL shows a terminal's state\n", args[0])
		return exitUsage
	case "broker":
		return cmdBroker(args[1:], stdout, stderr)
	case "job":
		return cmdJob(args[1:], stdout, stderr)
	case "fleet":
		return cmdFleet(args[1:], stdout, stderr)
	case "code":
		return cmdCode(args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "hqctl %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hqctl: unknown command %q\n\n%s", args[0], usage)
	return 2
}

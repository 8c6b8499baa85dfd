// Command hqctl is the HQ side of posagent: command-signing keys, signed
// commands to terminals, the activation service, fleet status, and an
// embedded lab broker for demos and tests. See README.md and
// ../../../shared/spec/remote.md.
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
  hqctl broker [--listen ADDR]          run an embedded lab MQTT broker (not for production)
  hqctl version

Run "hqctl COMMAND --help" for a command's flags.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "broker":
		return cmdBroker(args[1:], stdout, stderr)
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

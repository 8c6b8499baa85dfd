// Command posagentd is the firmware-side agent of an ARM POS payment
// terminal: it drives the operator menu, talks ISO 8583 to the acquirer and
// takes signed commands from HQ over MQTT. README.md summarises its CLI
// contract (spec/terminal.md).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/posagent/posagent/hal/linuxhw"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

// Exit statuses (spec/terminal.md §CLI). A supervisor that sees exitReboot
// restarts the daemon: that is a reboot for reboot = "exit".
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitReboot = 3
)

const usage = `posagentd — the POS terminal agent

Usage:
  posagentd --config FILE              run the daemon
  posagentd factory-init --data-dir DIR --serial SERIAL --hq-key KID=BASE64 [--hq-key …] --tech-pwd-file FILE
                                       create the factory identity (once)
  posagentd provision --config FILE --file PROVISION.json
                                       lab/bench: make an unactivated terminal active from a file
  posagentd check-config --config FILE validate a config and print the effective one
  posagentd version                    print the version

Exit status: 0 after SIGTERM/SIGINT, 1 on a bad config, a missing identity
or an unusable store (one line on stderr), 2 on bad usage, 3 when a reboot
was requested and [hal] reboot = "exit".
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Fprintf(stdout, "posagentd %s\n", version)
			return exitOK
		case "factory-init":
			return cmdFactoryInit(args[1:], stdout, stderr)
		case "provision":
			return cmdProvision(args[1:], stdout, stderr)
		case "check-config":
			return cmdCheckConfig(args[1:], stdout, stderr)
		case "help", "-h", "--help", "-help":
			fmt.Fprint(stdout, usage)
			return exitOK
		}
	}
	fs := flag.NewFlagSet("posagentd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cfgPath := fs.String("config", "/etc/posagent/posagent.toml", "config file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "posagentd: unknown command %q (see posagentd --help)\n", fs.Arg(0))
		return exitUsage
	}
	cfg, err := LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "posagentd: %v\n", err)
		return exitError
	}
	return runDaemon(cfg, stderr)
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	cfgPath := fs.String("config", "/etc/posagent/posagent.toml", "config file")
	noDevices := fs.Bool("no-devices", false, "do not check that the configured devices and GPIO pins exist (a build host)")
	if code, done := parseFlags(fs, args, "posagentd check-config --config FILE [--no-devices]",
		"Validates a config, checks that its devices and pins exist, and prints the effective config.", stdout, stderr); done {
		return code
	}
	cfg, err := LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "posagentd: %v\n", err)
		return exitError
	}
	if !*noDevices {
		if err := linuxhw.CheckDevices(cfg.HAL); err != nil {
			fmt.Fprintf(stderr, "posagentd: config %s: %v\n", *cfgPath, err)
			return exitError
		}
	}
	if err := writeConfig(stdout, cfg); err != nil {
		fmt.Fprintf(stderr, "posagentd: %v\n", err)
		return exitError
	}
	return exitOK
}

// parseFlags parses a subcommand's flags: -h/--help prints its usage to
// stdout and exits 0; a bad flag or an extra argument is a usage error.
// done says the command ends with code.
func parseFlags(fs *flag.FlagSet, args []string, synopsis, what string, stdout, stderr io.Writer) (code int, done bool) {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: %s\n\n%s\n\n", synopsis, what)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK, true
		}
		fmt.Fprintf(stderr, "posagentd %s: %v\n", fs.Name(), err)
		usage(stderr)
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "posagentd %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		usage(stderr)
		return exitUsage, true
	}
	return 0, false
}

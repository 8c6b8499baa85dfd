package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

// newFlagSet makes a subcommand's flag set whose usage starts with the
// command line and a description of what the command does.
func newFlagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: hqctl %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(about))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's flags. -h/--help prints the command's
// usage on stdout and stops with exit status 0; a bad flag prints the error
// and the usage on stderr and stops with exitUsage.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, stop bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		fs.SetOutput(stderr)
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, true
	}
	fs.SetOutput(stderr)
	fmt.Fprintf(stderr, "hqctl %s: %v\n", fs.Name(), err)
	fs.Usage()
	return exitUsage, true
}

// checkTTL refuses a command validity a terminal would reject as invalid
// (remote.md: expires_at - issued_at <= 7 days).
func checkTTL(ttl time.Duration) error {
	switch {
	case ttl <= 0:
		return fmt.Errorf("--ttl %v: must be positive", ttl)
	case ttl > remote.MaxValidity:
		return fmt.Errorf("--ttl %v: a command may be valid for at most 7 days (168h), terminals reject a longer window as invalid; "+
			"use a shorter --ttl and send the command again if it expires", ttl)
	}
	return nil
}

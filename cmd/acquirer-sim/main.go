// Command acquirer-sim is an acquirer host for the ISO 8583 profile of
// spec/acquirer.md, on the moov-io reference codec, with a ledger tests can
// read and fault injection. All behaviour lives in iso8583/hostsim.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/posagent/posagent/iso8583/hostsim"
)

const usageHead = `acquirer-sim: acquirer host simulator (CUP-style ISO 8583, spec/acquirer.md)

Usage: acquirer-sim [flags]

Answers sign-in 0800 (fresh PIK/MAK under the terminal's TMK in field 62),
sale and void 0200, reversal 0400, settlement 0500 and batch upload 0320,
one request/response at a time per connection, any number of connections.
Prints "listening on ADDR" on stdout once the port is open.

Sale decline rule (by the last two digits of field 4, the fen):
  ..51 -> 51 INSUFFICIENT FUNDS, ..55 -> 55 WRONG PIN, ..96 -> 96 SWITCH FAULT,
  any other amount -> 00 approved (38 auth code, 37 RRN, MACed 64).
Void: 25 no such original in the batch, 64 amount differs, 12 already voided.
Requests with a bad or missing MAC (or from a TID not signed in) -> A0.
A sale or void STAN seen before in the batch -> 94.
Reversal 0400: undoes an approved sale (or void, re-approving its sale) with
the STAN of field 11; always answers 0410, repeating it changes nothing; its
MAC may be under the current or the previous MAK.
Settlement: flag 1 (digit 30 of 48) when the terminal's domestic totals equal
the host's, else 2. Batch upload end (60.3 207 or 202) closes the batch and
the TID's batch number increments.

Faults are applied after the request is processed: a sale answered with
--no-answer, --drop or --bad-mac is APPROVED in the ledger (the terminal
must reverse it).

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("acquirer-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", "127.0.0.1:5000", "TCP `address` to accept terminals on (port 0: any free port)")
		tmkHex      = fs.String("tmk", hostsim.DefaultTMK, "default TMK, 32 hex digits, for any TID not in --keys; with --keys it applies only when given explicitly")
		keysFile    = fs.String("keys", "", "JSON `file` {\"TID\":\"TMK hex\"}, re-read at every sign-in; an unknown TID then gets 97 unless --tmk is given")
		ledgerFile  = fs.String("ledger", "", "`file` the ledger JSON is rewritten to (temp file + rename) after every change")
		control     = fs.String("control", "", "`address` of the HTTP control API: GET /ledger, GET /faults, POST /faults (JSON)")
		delay       = fs.Duration("delay", 0, "fault: wait this `duration` before answering")
		noAnswer    = fs.Bool("no-answer", false, "fault: read the request, never answer, keep the connection open until the client gives up")
		drop        = fs.Bool("drop", false, "fault: close the connection after reading the request")
		badMAC      = fs.Bool("bad-mac", false, "fault: approve 0210/0410 with a wrong field 64")
		notBalanced = fs.Bool("not-balanced", false, "fault: settlement always answers flag 2 (not balanced)")
		signinAgain = fs.Bool("signin-again", false, "fault: header 603103310000 (sign in again) on 0210/0410")
		faultsOn    = fs.String("faults-on", "", "limit faults to these comma-separated `MTIs`, optionally with a processing code: 0200,0400 or 0200:200000")
		faultCount  = fs.Int("fault-count", 0, "apply the faults to `N` requests, then heal (0: forever)")
		verbose     = fs.Bool("v", false, "debug logging")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	tmkSet := false
	fs.Visit(func(f *flag.Flag) { tmkSet = tmkSet || f.Name == "tmk" })
	cfg := hostsim.Config{KeysFile: *keysFile, LedgerFile: *ledgerFile, Logger: log}
	if *keysFile == "" || tmkSet {
		tmk, err := hostsim.ParseTMK(*tmkHex)
		if err != nil {
			fmt.Fprintln(stderr, "acquirer-sim: --tmk:", err)
			return 2
		}
		cfg.TMK = tmk
	}
	f := hostsim.Faults{Delay: *delay, NoAnswer: *noAnswer, Drop: *drop, BadMAC: *badMAC,
		NotBalanced: *notBalanced, SignInAgain: *signinAgain, Count: *faultCount}
	if *faultsOn != "" {
		for o := range strings.SplitSeq(*faultsOn, ",") {
			f.On = append(f.On, strings.TrimSpace(o))
		}
	}
	if err := f.Validate(); err != nil {
		fmt.Fprintln(stderr, "acquirer-sim:", err)
		return 2
	}
	cfg.Faults = f

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "acquirer-sim:", err)
		return 1
	}
	h := hostsim.New(cfg)
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String(), "faults", f.String())

	var srv *http.Server
	if *control != "" {
		cln, err := net.Listen("tcp", *control)
		if err != nil {
			fmt.Fprintln(stderr, "acquirer-sim: --control:", err)
			return 1
		}
		fmt.Fprintf(stdout, "control on %s\n", cln.Addr())
		srv = &http.Server{Handler: h.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(cln)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- h.Serve(ln) }()
	code := 0
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s.String())
	case err := <-done:
		if err != nil {
			log.Error("serve", "err", err)
			code = 1
		}
	}
	if srv != nil {
		srv.Close()
	}
	h.Close()
	return code
}

package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/storage/termstore"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// provisionFile is the development/bench provisioning file of
// `posagentd provision`: the same parameters HQ's signed `provision`
// command carries (spec/remote.md), with the TMK in clear hex because
// there is no HQ to seal it. Lab and factory use only.
type provisionFile struct {
	TID          string `json:"tid"`
	MID          string `json:"mid"`
	MerchantName string `json:"merchant_name"`
	Acquirer     struct {
		Addr string `json:"addr"`
		TLS  bool   `json:"tls"`
		TPDU string `json:"tpdu"`
	} `json:"acquirer"`
	TMK    string `json:"tmk"`     // 32 hex digits
	TMKKCV string `json:"tmk_kcv"` // optional: checked when given
	Batch  uint32 `json:"batch"`   // optional starting batch number, default 1
	// SettlementPAN is the settlement card to bind (default: a test card);
	// only its masked form and a hash are stored.
	SettlementPAN string `json:"settlement_pan"`
}

var panRE = regexp.MustCompile(`^[0-9]{12,19}$`)

// defaultSettlementPAN is the lab settlement card bound by provision when
// the file names none.
const defaultSettlementPAN = "6222600000000000018"

// validate checks the file. The merchant parameters go through the
// terminal's own provision-args rules (remote.ParseProvisionArgs: TID,
// MID, merchant name, acquirer address and TPDU), with placeholders for
// what only a signed command carries, so the bench path accepts exactly
// what HQ's command may carry.
func (p *provisionFile) validate() error {
	tpdu := p.Acquirer.TPDU
	if tpdu == "" {
		tpdu = "6000030000" // the probe's; an empty TPDU is the acquirer link's default
	}
	probe, err := json.Marshal(remote.ProvisionArgs{TID: remote.TID(p.TID), MID: remote.MID(p.MID), MerchantName: p.MerchantName,
		Acquirer:  remote.Acquirer{Addr: p.Acquirer.Addr, TLS: p.Acquirer.TLS, TPDU: remote.TPDU(tpdu)},
		TMKSealed: []byte{0}, TMKKCV: "000000", Activation: "bench"})
	if err != nil {
		return err
	}
	if _, err := remote.ParseProvisionArgs(probe); err != nil {
		return err
	}
	switch {
	case p.Batch > 999999:
		return errors.New("batch: at most 999999")
	case p.SettlementPAN != "" && !panRE.MatchString(p.SettlementPAN):
		return errors.New("settlement_pan: want 12 to 19 digits")
	}
	if b, err := hex.DecodeString(p.TMK); err != nil || len(b) != 16 {
		return errors.New("tmk: want 32 hex digits (a double-length 3DES key)")
	}
	return nil
}

// cmdProvision puts an unactivated terminal into the active state from a
// provisioning file: merchant parameters and counters into the merchant
// store, the TMK into the secure element. The daemon must not be running.
// Technician activation (spec/terminal.md) reaches the same state.
func cmdProvision(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	cfgPath := fs.String("config", "/etc/posagent/posagent.toml", "config file (for data_dir)")
	file := fs.String("file", "", "provisioning file (JSON)")
	if code, done := parseFlags(fs, args, "posagentd provision --config FILE --file PROVISION.json",
		"Lab and bench: activates a stopped terminal without HQ (parameters, counters, settlement card, clear TMK).", stdout, stderr); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "posagentd provision: "+format+"\n", a...)
		return exitError
	}
	if *file == "" {
		return fail("--file is required")
	}
	cfg, err := LoadConfig(*cfgPath)
	if err != nil {
		return fail("%v", err)
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return fail("%v", err)
	}
	var p provisionFile
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fail("%s: %v", *file, err)
	}
	if err := p.validate(); err != nil {
		return fail("%s: %v", *file, err)
	}
	tmk, _ := hex.DecodeString(p.TMK)
	kcv := p.TMKKCV
	if kcv == "" {
		kcv = mac.TMKKCV(tmk)
	}
	_, _, sePath := storage.Paths(cfg.DataDir)
	se, err := sesim.Open(sePath)
	if err != nil {
		return fail("secure element: %v", err)
	}
	store, err := termstore.Open(cfg.DataDir, se)
	if err != nil {
		return fail("%v", err)
	}
	defer store.Close()
	st, err := store.Load()
	if err != nil {
		return fail("%v", err)
	}
	if st.Merchant.TID != "" {
		return fail("terminal is already provisioned (unbind it first)")
	}
	if err := se.InstallTMK(tmk, kcv); err != nil {
		return fail("TMK: %v", err)
	}
	batch := terminal.BatchNo(p.Batch)
	if batch == 0 {
		batch = 1
	}
	pan := p.SettlementPAN
	if pan == "" {
		pan = defaultSettlementPAN
	}
	// A TID served before continues its STAN (the host's duplicate check).
	counters := terminal.Counters{Batch: batch}
	if c, ok := st.TIDCounters[terminal.TIDKey(st.Serial, p.TID)]; ok {
		counters.STAN = c.STAN
		if p.Batch == 0 {
			counters.Batch = c.Batch
		}
	}
	err = store.Apply([]terminal.Op{
		terminal.PutCounters{Counters: counters},
		terminal.PutBinding{Binding: terminal.NewBinding(st.Serial, pan, time.Now().UTC())},
		terminal.PutParams{Merchant: terminal.Merchant{
			TID: p.TID, MID: p.MID, Name: p.MerchantName,
			AcquirerAddr: p.Acquirer.Addr, AcquirerTLS: p.Acquirer.TLS, TPDU: p.Acquirer.TPDU,
		}},
	})
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "provisioned TID %s MID %s, acquirer %s\n", p.TID, p.MID, p.Acquirer.Addr)
	return exitOK
}

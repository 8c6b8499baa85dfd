package main

import (
	"os"
	"testing"
)

func dumpLogs(t *testing.T, h *Term) {
	os.WriteFile("/tmp/pc-daemon.log", []byte(h.Logs()), 0o644)
	os.WriteFile("/tmp/pc-sim.log", []byte(h.Sim.stderr.String()), 0o644)
	os.WriteFile("/tmp/pc-printer.log", []byte(h.PrinterText()), 0o644)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/iso8583/reference"
)

func buildSim(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "acquirer-sim")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBinary(t *testing.T) {
	bin := buildSim(t)

	// --help documents every flag and the decline rule.
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"-listen", "-tmk", "-keys", "-ledger", "-control", "-delay", "-no-answer",
		"-drop", "-bad-mac", "-not-balanced", "-signin-again", "-faults-on", "-fault-count",
		"..51 -> 51", "..55 -> 55", "..96 -> 96"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if out, err := exec.Command(bin, "--faults-on", "200").CombinedOutput(); err == nil {
		t.Errorf("bad --faults-on accepted:\n%s", out)
	}

	// A sign-in over TCP, the ledger file and the control API.
	ledger := filepath.Join(t.TempDir(), "ledger.json")
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--ledger", ledger)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	var addr, control string
	for (addr == "" || control == "") && sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			addr = a
		}
		if a, ok := strings.CutPrefix(sc.Text(), "control on "); ok {
			control = a
		}
	}
	if addr == "" || control == "" {
		t.Fatalf("no listening/control line; stderr:\n%s", stderr.String())
	}

	req, err := reference.Pack([5]byte{0x60, 0, 3, 0, 0}, [6]byte{0x60, 0x31, 0, 0x31, 0, 0}, "0800",
		map[int]string{11: "000001", 41: "12345678", 42: "123456789012345", 60: "0000000100300", 63: "01 "})
	if err != nil {
		t.Fatal(err)
	}
	c := &link.Client{Addr: addr, Timeout: 5 * time.Second}
	buf := make([]byte, link.MaxFrame)
	n, err := c.Exchange(context.Background(), req, buf)
	if err != nil {
		t.Fatalf("sign-in exchange: %v", err)
	}
	_, _, mti, f, err := reference.Unpack(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if mti != "0810" || f[39] != "00" {
		t.Fatalf("sign-in answer %s 39=%q", mti, f[39])
	}
	f62, _ := hex.DecodeString(f[62])
	tmk, _ := hostsim.ParseTMK(hostsim.DefaultTMK)
	if _, _, err := mac.UnwrapWorkingKeys(tmk, f62); err != nil {
		t.Fatalf("keys under the default TMK: %v", err)
	}

	l, err := hostsim.ReadLedgerFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	if l.Terminals["12345678"] == nil || l.Terminals["12345678"].SignIns != 1 {
		t.Errorf("ledger file: %+v", l.Terminals)
	}
	resp, err := http.Get("http://" + control + "/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cl hostsim.Ledger
	if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil {
		t.Fatal(err)
	}
	if cl.Terminals["12345678"].CurrentBatch != "000001" {
		t.Errorf("control ledger: %+v", cl.Terminals["12345678"])
	}
}

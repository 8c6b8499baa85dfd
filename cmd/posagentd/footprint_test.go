package main

// Footprint benchmarks (make footprint): the stripped ARMv7 binary size
// (target ≤ 12 MiB), the idle RSS of the agent on amd64 and under
// qemu-arm-static (target ≤ 16 MiB), and the cold start to MAIN MENU with
// a full 999-transaction batch in the store (target ≤ 150 ms on amd64).
// They measure the real binary as shipped (-trimpath -s -w), started as a
// process with the host simulator's stdio console.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal"
)

// fpBuild builds ./cmd/posagentd as shipped for goarch (arm means GOARM=7)
// into dir.
func fpBuild(b *testing.B, dir, goarch string) string {
	b.Helper()
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "posagentd-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/posagentd")
	cmd.Dir = filepath.Join(wd, "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM=7")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", goarch, err, o)
	}
	return out
}

// fpTerminal makes a provisioned, active terminal whose open batch holds
// 999 approved sales, written as posagentd writes them (terminal.Txn in
// JSON under batch/STAN keys), and returns its config file. hal is more
// [hal] lines (a framebuffer display).
func fpTerminal(b *testing.B, hal ...string) string {
	b.Helper()
	tmp := b.TempDir()
	data := filepath.Join(tmp, "data")
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	pwd := filepath.Join(tmp, "pwd")
	os.WriteFile(pwd, []byte("4321\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"factory-init", "--data-dir", data, "--serial", "PA-FP-0001",
		"--hq-key", "hq-1=" + base64.StdEncoding.EncodeToString(pub), "--tech-pwd-file", pwd}, &out, &errb); code != 0 {
		b.Fatalf("factory-init: %s", errb.String())
	}
	card := filepath.Join(tmp, "card")
	os.WriteFile(card, nil, 0o600)
	cfg := filepath.Join(tmp, "posagent.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\nlog_level = \"warn\"\n[hal]\nkind = \"sim\"\nconsole = \"stdio\"\ncard_reader = %q\nprinter = %q\nreboot = \"exit\"\n%s\n",
		data, card, filepath.Join(tmp, "printer.txt"), strings.Join(hal, "\n"))), 0o600)
	prov := filepath.Join(tmp, "provision.json")
	os.WriteFile(prov, []byte(`{"tid":"12345678","mid":"123456789012345","merchant_name":"FOOTPRINT",
		"acquirer":{"addr":"127.0.0.1:9","tpdu":"6000030000"},"tmk":"0123456789ABCDEFFEDCBA9876543210"}`), 0o600)
	if code := run([]string{"provision", "--config", cfg, "--file", prov}, &out, &errb); code != 0 {
		b.Fatalf("provision: %s", errb.String())
	}

	_, merchPath, sePath := storage.Paths(data)
	se, err := sesim.Open(sePath)
	if err != nil {
		b.Fatal(err)
	}
	m, err := storage.OpenMerchant(merchPath, se)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	start := time.Now().Add(-8 * time.Hour)
	err = m.Update(func(tx *storage.MerchantTx) error {
		for i := 1; i <= 999; i++ {
			t := terminal.Txn{
				Batch: 1, STAN: terminal.STAN(i), Type: terminal.Sale,
				Amount: terminal.Amount(100 + i), PAN: "6222021234567890123", Expiry: "2512",
				EntryMode: "021", Time: start.Add(time.Duration(i) * 20 * time.Second),
				Status: terminal.Approved, RespCode: "00",
				RRN: fmt.Sprintf("%012d", i), Auth: fmt.Sprintf("%06d", i),
			}
			rec, err := json.Marshal(t)
			if err != nil {
				return err
			}
			if err := tx.PutTxn(1, uint32(i), rec); err != nil {
				return err
			}
		}
		return tx.PutCounters(storage.Counters{STAN: 999, Batch: 1})
	})
	if err != nil {
		b.Fatalf("write the journal: %v", err)
	}
	return cfg
}

// fpProc is a running agent with its console on pipes.
type fpProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	menu  chan time.Time // gets the time MAIN MENU first appears on stdout
	errb  *bytes.Buffer
}

func fpStart(b *testing.B, argv []string) *fpProc {
	b.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	p := &fpProc{cmd: cmd, stdin: stdin, menu: make(chan time.Time, 1), errb: new(bytes.Buffer)}
	cmd.Stderr = p.errb
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		r := bufio.NewReader(stdout)
		var seen bytes.Buffer
		buf := make([]byte, 4096)
		sent := false
		for {
			n, err := r.Read(buf)
			if !sent {
				seen.Write(buf[:n])
				if bytes.Contains(seen.Bytes(), []byte("MAIN MENU")) || bytes.Contains(seen.Bytes(), []byte("主菜单")) {
					p.menu <- time.Now()
					sent = true
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *fpProc) waitMenu(b *testing.B) time.Time {
	b.Helper()
	select {
	case at := <-p.menu:
		return at
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		p.cmd.Wait()
		b.Fatalf("no MAIN MENU within 60s; stderr: %s", p.errb.String())
	}
	return time.Time{}
}

func (p *fpProc) stop(b *testing.B) {
	b.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Errorf("exit after SIGTERM: %v; stderr: %s", err, p.errb.String())
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-done
		b.Errorf("no exit 20s after SIGTERM")
	}
	p.stdin.Close()
}

// vmRSS reads the resident set of pid from /proc, in bytes.
func vmRSS(b *testing.B, pid int) float64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

const mib = 1 << 20

// BenchmarkFootprintColdStart999: exec to MAIN MENU on the console, with
// 999 transactions in the open batch (the journal is loaded at boot).
// Target ≤ 150 ms on amd64.
func BenchmarkFootprintColdStart999(b *testing.B) {
	bin := fpBuild(b, b.TempDir(), "amd64")
	cfg := fpTerminal(b)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		p := fpStart(b, []string{bin, "--config", cfg})
		total += p.waitMenu(b).Sub(t0)
		b.StopTimer()
		p.stop(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-menu")
}

// BenchmarkFootprintIdleRSS: the resident set 2 s after MAIN MENU with the
// 999-transaction batch loaded, natively and under qemu-arm-static (the
// latter includes qemu's own translator, so it is an upper bound for the
// ARMv7 terminal); the -fb runs also draw every screen on a 320x240
// 16-bit framebuffer (a regular file standing in for /dev/fb0: the
// adapter's canvas and back buffer, the font, in zh-CN). Target ≤ 16 MiB.
func BenchmarkFootprintIdleRSS(b *testing.B) {
	dir := b.TempDir()
	cfg := fpTerminal(b)
	fb := filepath.Join(b.TempDir(), "fb0")
	cfgFB := fpTerminal(b, fmt.Sprintf("display = %q", "fb:"+fb), `display_geometry = "320x240x16"`, "[ui]", `lang = "zh-CN"`)
	for _, tc := range []struct {
		name, goarch string
		wrap         []string
		cfg          string
	}{
		{"amd64", "amd64", nil, cfg},
		{"qemu-armv7", "arm", []string{"qemu-arm-static"}, cfg},
		{"amd64-fb", "amd64", nil, cfgFB},
		{"qemu-armv7-fb", "arm", []string{"qemu-arm-static"}, cfgFB},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.wrap != nil {
				if _, err := exec.LookPath(tc.wrap[0]); err != nil {
					b.Fatalf("%s: %v (build/install-tools.sh installs qemu-user-static)", tc.wrap[0], err)
				}
			}
			bin := fpBuild(b, dir, tc.goarch)
			var rss float64
			for i := 0; i < b.N; i++ {
				p := fpStart(b, append(append([]string(nil), tc.wrap...), bin, "--config", tc.cfg))
				p.waitMenu(b)
				time.Sleep(2 * time.Second)
				rss += vmRSS(b, p.cmd.Process.Pid)
				p.stop(b)
				if tc.cfg == cfgFB {
					if px, err := os.ReadFile(fb); err != nil || len(px) != 320*240*2 || bytes.Count(px, []byte{0}) == len(px) {
						b.Fatalf("the framebuffer file was not drawn (%d bytes, %v)", len(px), err)
					}
				}
			}
			b.ReportMetric(rss/float64(b.N)/mib, "MiB-RSS")
		})
	}
}

// BenchmarkFootprintBinarySizeARMv7: the stripped static ARMv7 posagentd.
// Target ≤ 12 MiB.
func BenchmarkFootprintBinarySizeARMv7(b *testing.B) {
	dir := b.TempDir()
	var size int64
	for i := 0; i < b.N; i++ {
		fi, err := os.Stat(fpBuild(b, dir, "arm"))
		if err != nil {
			b.Fatal(err)
		}
		size = fi.Size()
	}
	b.ReportMetric(float64(size)/mib, "MiB")
}

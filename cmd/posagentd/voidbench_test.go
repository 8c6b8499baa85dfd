package main

// BenchmarkVoidRoundTrip measures, inside the agent, the void round trip
// from the confirm key (Enter on VOID?) to the APPROVED screen against an
// instantly answering loopback host: core step, write-ahead fsync, MAC in
// the secure element, TCP exchange, commit fsync, receipt, screen.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/haltest"
	"github.com/posagent/posagent/iso8583/hostsim"
)

// timedDisplay passes every screen to the fake display and to a channel,
// stamped when the loop showed it.
type timedDisplay struct {
	inner hal.Display
	ch    chan shownScreen
}

type shownScreen struct {
	at   time.Time
	text string
}

func (d *timedDisplay) Show(s hal.Screen) error {
	at := time.Now()
	err := d.inner.Show(s)
	d.ch <- shownScreen{at: at, text: strings.Join(s.Lines, "\n")}
	return err
}

var _ hal.Display = (*timedDisplay)(nil)

// inProcess is a daemon built with openDaemon on haltest devices, its loop
// running in a goroutine.
type inProcess struct {
	tb    testing.TB
	d     *daemon
	fakes *haltest.Fakes
	shown chan shownScreen
	sigs  chan os.Signal
	done  chan int
}

// waitFor reads screens until one contains word.
func (p *inProcess) waitFor(word string) shownScreen {
	p.tb.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case s := <-p.shown:
			if strings.Contains(s.text, word) {
				return s
			}
		case <-timeout:
			p.tb.Fatalf("timeout waiting for %q; last screen %q", word, p.fakes.Display.Last().Lines)
		}
	}
}

func (p *inProcess) keys(s string) { p.fakes.Keypad.PushString(s) }

// startInProcess provisions a terminal in a temp dir against addr and
// runs its daemon in-process.
func startInProcess(tb testing.TB, addr string) *inProcess {
	tb.Helper()
	pub, _, _ := ed25519.GenerateKey(nil)
	return startInProcessMQTT(tb, addr, "", pub)
}

// startInProcessMQTT is startInProcess with the [mqtt] broker set (when
// not "") and hq-1 = hqPub.
func startInProcessMQTT(tb testing.TB, addr, broker string, hqPub ed25519.PublicKey) *inProcess {
	tb.Helper()
	dir := tb.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "pos.toml")
	cfgText := fmt.Sprintf("data_dir = %q\nlog_level = \"info\"\n[hal]\nkind = \"sim\"\nconsole = \"stdio\"\nreboot = \"exit\"\n[acquirer]\ntimeout = \"5s\"\n", dataDir)
	if broker != "" {
		cfgText += fmt.Sprintf("[mqtt]\nbroker = %q\n", broker)
	}
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		tb.Fatal(err)
	}
	pwd := filepath.Join(dir, "techpwd")
	if err := os.WriteFile(pwd, []byte("8888\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"factory-init", "--data-dir", dataDir, "--serial", "PA-BENCH",
		"--hq-key", "hq-1=" + base64.StdEncoding.EncodeToString(hqPub), "--tech-pwd-file", pwd}, &out, &errb); code != 0 {
		tb.Fatalf("factory-init: %s", errb.String())
	}
	prov, _ := json.Marshal(map[string]any{"tid": "87654321", "mid": "123456789012345", "merchant_name": "BENCH",
		"acquirer": map[string]any{"addr": addr, "tpdu": "6000030000"}, "tmk": hostsim.DefaultTMK})
	provPath := filepath.Join(dir, "prov.json")
	if err := os.WriteFile(provPath, prov, 0o600); err != nil {
		tb.Fatal(err)
	}
	if code := run([]string{"provision", "--config", cfgPath, "--file", provPath}, &out, &errb); code != 0 {
		tb.Fatalf("provision: %s", errb.String())
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	devs, fakes := haltest.Devices()
	p := &inProcess{tb: tb, fakes: fakes, shown: make(chan shownScreen, 4096),
		sigs: make(chan os.Signal, 1), done: make(chan int, 1)}
	devs.Display = &timedDisplay{inner: fakes.Display, ch: p.shown}
	p.d, err = openDaemon(cfg, newLogger(io.Discard, "info"), system{Devices: devs})
	if err != nil {
		tb.Fatal(err)
	}
	go func() { p.done <- p.d.loop(p.sigs) }()
	tb.Cleanup(func() {
		p.sigs <- syscall.SIGTERM
		// Drain screens so the loop never blocks on the channel.
		for {
			select {
			case <-p.shown:
				continue
			case <-p.done:
			}
			break
		}
		p.d.close()
	})
	p.waitFor("MAIN MENU")
	return p
}

func BenchmarkVoidRoundTrip(b *testing.B) {
	tmk, _ := hex.DecodeString(hostsim.DefaultTMK)
	host := hostsim.New(hostsim.Config{TMK: tmk, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go host.Serve(ln)
	b.Cleanup(func() { host.Close() })
	p := startInProcess(b, ln.Addr().String())

	// One sale and void before timing: the sign-in, the first dial.
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N + 1 {
		// Untimed: a fresh approved sale, then up to VOID?.
		p.keys("1")
		p.waitFor("AMOUNT")
		p.keys(fmt.Sprintf("%d\r", 100+10*(i%5000))) // ends in 0: approved
		p.waitFor("SWIPE CARD")
		p.fakes.CardReader.Swipe(track2A)
		s := p.waitFor("APPROVED")
		v := voucherOf(b, s.text)
		p.keys("\r")
		p.waitFor("MAIN MENU")
		p.keys("21123456\r")
		p.waitFor("VOID BY")
		p.keys("1" + v + "\r")
		p.waitFor("VOID?")

		// Timed: Enter on VOID? until APPROVED is on the display.
		if i > 0 {
			b.StartTimer()
		}
		t0 := time.Now()
		p.keys("\r")
		s = p.waitFor("APPROVED")
		if i > 0 {
			b.StopTimer()
			lat = append(lat, s.at.Sub(t0))
		}
		p.keys("\r")
		p.waitFor("TRANSACTION MGMT")
		p.keys("x")
		p.waitFor("MAIN MENU")
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		i := min(len(lat)-1, int(q*float64(len(lat))))
		return float64(lat[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if ht := host.Ledger().Terminals["87654321"]; ht == nil || len(ht.Batches) == 0 {
		b.Fatal("the host saw nothing")
	} else {
		voids := 0
		for _, x := range ht.Batches[0].Transactions {
			if x.Type == hostsim.TypeVoid && x.State == hostsim.StateApproved {
				voids++
			}
		}
		if voids != b.N+1 {
			b.Fatalf("host approved %d voids, want %d", voids, b.N+1)
		}
	}
}

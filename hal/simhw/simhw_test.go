package simhw

import (
	"bytes"
	"errors"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/internal/ptytest"
)

var discard = slog.New(slog.DiscardHandler)

func simConfig(t *testing.T) (hal.Config, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := hal.DefaultConfig()
	cfg.Kind = hal.KindSim
	cfg.Console = ptytest.New(t).Path
	cfg.CardReader = ""
	cfg.Printer = filepath.Join(dir, "receipts.txt")
	cfg.Reboot = hal.RebootExit
	return cfg, dir
}

func nextSwipe(t *testing.T, r hal.CardReader) hal.CardEvent {
	t.Helper()
	select {
	case ev := <-r.Swipes():
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no swipe")
	}
	return hal.CardEvent{}
}

func TestPrinterFile(t *testing.T) {
	cfg, _ := simConfig(t)
	d, err := Open(cfg, t.TempDir(), discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const pan = "6222021234567890123"
	receipts := []hal.Receipt{
		{Lines: []string{"POSAGENT", "SALE", "CARD " + hal.MaskPAN(pan), "AMOUNT 12.34"}},
		{Lines: []string{"VOID", "CARD " + hal.MaskPAN(pan), "DUPLICATE"}},
	}
	for _, r := range receipts {
		if err := d.Printer.Print(r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(cfg.Printer)
	if err != nil {
		t.Fatal(err)
	}
	want := "POSAGENT\nSALE\nCARD 622202*********0123\nAMOUNT 12.34\n\f\n" +
		"VOID\nCARD 622202*********0123\nDUPLICATE\n\f\n"
	if string(b) != want {
		t.Fatalf("printer file %q\nwant %q", b, want)
	}
	if strings.Contains(string(b), pan) {
		t.Fatal("printer file holds a full PAN")
	}
	if got := strings.Split(strings.TrimSuffix(string(b), ReceiptSeparator), ReceiptSeparator); len(got) != 2 {
		t.Fatalf("split into %d receipts, want 2", len(got))
	}
	fi, err := os.Stat(cfg.Printer)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("printer file mode %v (%v), want 0600", fi.Mode(), err)
	}

	// Reopening appends, never truncates.
	d.Close()
	d2, err := Open(cfg, t.TempDir(), discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	d2.Printer.Print(hal.Receipt{Lines: []string{"THIRD"}})
	b, _ = os.ReadFile(cfg.Printer)
	if string(b) != want+"THIRD\n\f\n" {
		t.Fatalf("after reopen %q", b)
	}
}

func TestConsoleAndCardReaderOnPtys(t *testing.T) {
	cfg, _ := simConfig(t)
	con, card := ptytest.New(t), ptytest.New(t)
	cfg.Console, cfg.CardReader = con.Path, card.Path
	d, err := Open(cfg, t.TempDir(), discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	con.Write(t, []byte("5\n"))
	for _, want := range []hal.Key{hal.Key5, hal.KeyEnter} {
		select {
		case k := <-d.Keypad.Keys():
			if k != want {
				t.Fatalf("key %v, want %v", k, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no key")
		}
	}
	if err := d.Display.Show(hal.Screen{Lines: []string{"SWIPE CARD"}}); err != nil {
		t.Fatal(err)
	}
	con.Expect(t, []byte("\x1b[2J\x1b[HSWIPE CARD"))

	card.Write(t, []byte(";4761739001010010=30122011143804400000?\r\n"))
	ev := nextSwipe(t, d.CardReader)
	if ev.Err != nil || ev.Track2.Raw != "4761739001010010=30122011143804400000" {
		t.Fatalf("swipe %v err %v", ev.Track2, ev.Err)
	}
}

func TestCardReaderFIFO(t *testing.T) {
	cfg, dir := simConfig(t)
	fifo := filepath.Join(dir, "card")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CardReader = fifo
	d, err := Open(cfg, dir, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Two writers one after the other, as two `echo ... > fifo` would be.
	for _, pan := range []string{"123456789012", "6222021234567890"} {
		if err := os.WriteFile(fifo, []byte(";"+pan+"=2601101?\n"), 0); err != nil {
			t.Fatal(err)
		}
		if ev := nextSwipe(t, d.CardReader); ev.Err != nil || ev.Track2.PAN != pan {
			t.Fatalf("swipe %v err %v, want %s", ev.Track2, ev.Err, hal.MaskPAN(pan))
		}
	}
}

func TestCardReaderTailsFile(t *testing.T) {
	tailPoll = 10 * time.Millisecond
	cfg, dir := simConfig(t)
	path := filepath.Join(dir, "swipes.txt")
	// An old swipe already in the file is not replayed.
	if err := os.WriteFile(path, []byte(";999999999999=2601101?\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CardReader = path
	d, err := Open(cfg, dir, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	time.Sleep(50 * time.Millisecond) // let the reader open and seek to the end
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(";123456789012=2601101?\n")
	f.Close()
	if ev := nextSwipe(t, d.CardReader); ev.Err != nil || ev.Track2.PAN != "123456789012" {
		t.Fatalf("swipe %v err %v", ev.Track2, ev.Err)
	}
}

func TestTamperFile(t *testing.T) {
	TamperPoll = 10 * time.Millisecond
	defer func() { TamperPoll = time.Second }()
	cfg, _ := simConfig(t)
	dataDir := t.TempDir()
	d, err := Open(cfg, dataDir, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	trigger := filepath.Join(dataDir, TamperFile)
	for i := range 2 {
		if err := os.WriteFile(trigger, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		select {
		case <-d.Tamper.Tampered():
		case <-time.After(5 * time.Second):
			t.Fatalf("tamper %d did not fire", i+1)
		}
		select {
		case <-d.Tamper.Tampered():
			t.Fatalf("tamper %d fired twice", i+1)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(trigger); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("trigger file not removed after firing: %v", err)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	cfg, dir := simConfig(t)
	cfg.Printer = ""
	d, err := Open(cfg, dir, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Printer.Print(hal.Receipt{}); !errors.Is(err, hal.ErrNoPrinter) {
		t.Fatalf("no printer: Print = %v", err)
	}
	if err := d.Rebooter.Reboot(); !errors.Is(err, hal.ErrRebootExit) {
		t.Fatalf("Reboot = %v, want ErrRebootExit", err)
	}
	if err := d.LED.SetLED(hal.LEDRed); err != nil {
		t.Fatal(err)
	}
	if err := d.Buzzer.Beep(time.Second); err != nil {
		t.Fatal(err)
	}

	cfg.Kind = hal.KindLinux
	if _, err := Open(cfg, dir, discard); err == nil {
		t.Fatal("Open accepted kind linux")
	}
}

func TestPrinterOnPtyIsESCPOS(t *testing.T) {
	cfg, dir := simConfig(t)
	prn := ptytest.New(t)
	cfg.Printer = prn.Path
	d, err := Open(cfg, dir, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Printer.Print(hal.Receipt{Lines: []string{"OK"}}); err != nil {
		t.Fatal(err)
	}
	prn.Expect(t, []byte("\x1b@OK\n\x1bd\x04\x1dV\x01"))
}

// TestDisplayPNG: with display_png the screens also go, drawn as a
// framebuffer of display_png_size shows them, into a PNG file.
func TestDisplayPNG(t *testing.T) {
	cfg, _ := simConfig(t)
	cfg.DisplayPNG = filepath.Join(t.TempDir(), "screen.png")
	cfg.DisplayPNGSize = "128x64"
	d, err := Open(cfg, t.TempDir(), discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Display.Show(hal.Screen{Lines: []string{"主菜单", "1 消费"}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(cfg.DisplayPNG)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 128 || b.Dy() != 64 {
		t.Fatalf("PNG is %v, want 128x64", b)
	}
	cfg.DisplayPNGSize = "64x32"
	if _, err := Open(cfg, t.TempDir(), discard); err == nil || !strings.Contains(err.Error(), "display_png_size") {
		t.Fatalf("a 64x32 display_png: %v", err)
	}
}

// TestFramebufferFile: display = "fb:PATH" on a regular file draws every
// screen into it as a framebuffer of display_geometry (and the console
// still shows it); one that cannot be opened is one error line, a
// DisplayFault, and the console alone.
func TestFramebufferFile(t *testing.T) {
	cfg, dir := simConfig(t)
	fb := filepath.Join(dir, "fb0")
	cfg.Display, cfg.DisplayGeometry = "fb:"+fb, "128x64x1"
	var logs bytes.Buffer
	d, err := Open(cfg, t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.DisplayFault != nil {
		t.Fatalf("DisplayFault = %v", d.DisplayFault)
	}
	if err := d.Display.Show(hal.Screen{Lines: []string{"主菜单", "1 消费"}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fb)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 128*64/8 || bytes.Count(b, []byte{0}) == len(b) {
		t.Fatalf("framebuffer file: %d bytes, blank %v; want a drawn 128x64 mono screen", len(b), bytes.Count(b, []byte{0}) == len(b))
	}

	cfg.Display = "fb:" + filepath.Join(dir, "no-such-dir", "fb0")
	logs.Reset()
	d2, err := Open(cfg, t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.DisplayFault == nil || strings.Count(logs.String(), "level=ERROR") != 1 {
		t.Fatalf("DisplayFault = %v; logs:\n%s", d2.DisplayFault, logs.String())
	}
	if err := d2.Display.Show(hal.Screen{Lines: []string{"MAIN MENU"}}); err != nil {
		t.Fatalf("the console goes on: %v", err)
	}
}

// TestPrinterFileEncoding: the printer file holds what the printer's font
// reads: GB18030 for printer_encoding = "gb18030" (the zh-CN default), a
// '?' for a Chinese character in ASCII.
func TestPrinterFileEncoding(t *testing.T) {
	for _, tc := range []struct {
		enc  string
		want string
	}{
		{"gb18030", "\xb3\xb7\xcf\xfa 12.34\n\f\n"}, // 撤销 in GB18030
		{"ascii", "?? 12.34\n\f\n"},
	} {
		cfg, _ := simConfig(t)
		cfg.PrinterEncoding = tc.enc
		d, err := Open(cfg, t.TempDir(), discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Printer.Print(hal.Receipt{Lines: []string{"撤销 12.34"}}); err != nil {
			t.Fatal(err)
		}
		d.Close()
		b, err := os.ReadFile(cfg.Printer)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s: printer file %q, want %q", tc.enc, b, tc.want)
		}
	}
}

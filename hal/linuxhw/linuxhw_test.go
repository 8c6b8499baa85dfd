package linuxhw

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/evdev"
	"github.com/posagent/posagent/hal/internal/ptytest"
	"github.com/posagent/posagent/hal/usblp"
)

func TestOpenOverPtys(t *testing.T) {
	con, card, prn := ptytest.New(t), ptytest.New(t), ptytest.New(t)
	cfg := hal.DefaultConfig()
	cfg.Console, cfg.CardReader, cfg.Printer = con.Path, card.Path, prn.Path
	cfg.Reboot = hal.RebootExit
	d, err := Open(cfg, discard)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer d.Close()

	// Console keys: bytes from the terminal side become Keys.
	con.Write(t, []byte("12\r\n\x1b[Ax\x7f"))
	var keys []string
	for len(keys) < 5 {
		select {
		case k := <-d.Keypad.Keys():
			keys = append(keys, k.String())
		case <-time.After(5 * time.Second):
			t.Fatalf("keys so far %v", keys)
		}
	}
	if got := strings.Join(keys, " "); got != "1 2 ENTER CANCEL CLEAR" {
		t.Fatalf("keys %q", got)
	}

	// Console screen: exactly the rendered bytes reach the terminal.
	if err := d.Display.Show(hal.Screen{Lines: []string{"MAIN MENU", "1 SALE"}}); err != nil {
		t.Fatal(err)
	}
	con.Expect(t, []byte("\x1b[2J\x1b[HMAIN MENU\r\n1 SALE"))

	// Card reader: one line per swipe, CR LF or bare LF, bad swipes as Err.
	card.Write(t, []byte(";6222021234567890123=25121011234567890?\r\n;bad?\n"))
	ev := nextSwipe(t, d.CardReader)
	if ev.Err != nil || ev.Track2.PAN != "6222021234567890123" || ev.Track2.Expiry != "2512" {
		t.Fatalf("swipe 1: %+v (err %v)", ev.Track2, ev.Err)
	}
	if ev = nextSwipe(t, d.CardReader); !errors.Is(ev.Err, hal.ErrTrack2Format) {
		t.Fatalf("swipe 2: err %v, want ErrTrack2Format", ev.Err)
	}

	// Printer: ESC/POS init, text lines, feed, partial cut.
	r := hal.Receipt{Lines: []string{"SALE", "CARD " + hal.MaskPAN("6222021234567890123"), "AMT 12.34"}}
	if err := d.Printer.Print(r); err != nil {
		t.Fatal(err)
	}
	prn.Expect(t, []byte("\x1b@SALE\nCARD 622202*********0123\nAMT 12.34\n\x1bd\x04\x1dV\x01"))

	if err := d.Rebooter.Reboot(); !errors.Is(err, hal.ErrRebootExit) {
		t.Fatalf("Reboot = %v, want ErrRebootExit", err)
	}
	// Absent GPIO parts are no-ops.
	if err := d.LED.SetLED(hal.LEDGreen); err != nil {
		t.Fatal(err)
	}
	if err := d.Buzzer.Beep(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d.Tamper.Tampered() != nil {
		t.Fatal("absent tamper input has a channel")
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
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

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*hal.Config)
		want string
	}{
		{"wrong kind", func(c *hal.Config) { c.Kind = hal.KindSim }, `hal.kind is "sim"`},
		{"bad reboot mode", func(c *hal.Config) { c.Reboot = "halt" }, `hal.reboot "halt"`},
		{"missing console", func(c *hal.Config) { c.Console = "/nonexistent/ttyS9" }, "console"},
		{"bad display", func(c *hal.Config) { c.Display = "fb0" }, `hal.display: "fb0"`},
		{"bad keypad", func(c *hal.Config) { c.Keypad = "evdev:" }, `hal.keypad: "evdev:"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hal.DefaultConfig()
			cfg.Console = ptytest.New(t).Path
			cfg.CardReader, cfg.Printer = "", ""
			tt.mod(&cfg)
			d, err := Open(cfg, discard)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestOpenAbsentPrinter(t *testing.T) {
	cfg := hal.DefaultConfig()
	cfg.Console = ptytest.New(t).Path
	cfg.CardReader, cfg.Printer = "", ""
	d, err := Open(cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Printer.Print(hal.Receipt{Lines: []string{"X"}}); !errors.Is(err, hal.ErrNoPrinter) {
		t.Fatalf("Print = %v, want ErrNoPrinter", err)
	}
	if d.CardReader.Swipes() != nil {
		t.Fatal("absent card reader has a channel")
	}
}

// TestOpenSeparateDevices: display, keypad and printer from [hal] display,
// keypad and printer. A framebuffer that is not one (a regular file
// answers the fbdev ioctls with ENOTTY) gives one error line and the
// screens go to the console; the evdev keypad reads input_event records;
// a usblp printer queues; a GB18030 serial printer prints Chinese.
func TestOpenSeparateDevices(t *testing.T) {
	dir := t.TempDir()
	fb := filepath.Join(dir, "fb0")
	os.WriteFile(fb, make([]byte, 4096), 0o644)
	event := filepath.Join(dir, "event0")
	if err := syscall.Mkfifo(event, 0o600); err != nil {
		t.Fatal(err)
	}
	con, prn := ptytest.New(t), ptytest.New(t)
	cfg := hal.DefaultConfig()
	cfg.Console, cfg.CardReader, cfg.Printer = con.Path, "", prn.Path
	cfg.Display, cfg.Keypad = "fb:"+fb, "evdev:"+event
	cfg.PrinterEncoding = "gb18030"
	var logs bytes.Buffer
	d, err := Open(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "FBIOGET_VSCREENINFO") {
		t.Fatalf("want one error line naming the ioctl:\n%s", logs.String())
	}
	if d.DisplayFault == nil || !strings.Contains(d.DisplayFault.Error(), "FBIOGET_VSCREENINFO") {
		t.Fatalf("DisplayFault = %v, want the ioctl's error (the screen says so)", d.DisplayFault)
	}
	if err := d.Display.Show(hal.Screen{Lines: []string{"MAIN MENU"}}); err != nil {
		t.Fatal(err)
	}
	con.Expect(t, []byte("\x1b[2J\x1b[HMAIN MENU"))

	w, err := os.OpenFile(event, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(evdev.Encode(evdev.NativeLayout, evdev.CodeKPEnter, 1))
	select {
	case k := <-d.Keypad.Keys():
		if k != hal.KeyEnter {
			t.Fatalf("key %v, want ENTER", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no key from the evdev keypad")
	}

	if err := d.Printer.Print(hal.Receipt{Lines: []string{"消费"}}); err != nil {
		t.Fatal(err)
	}
	prn.Expect(t, []byte("\x1b@\x1c&\xcf\xfb\xb7\xd1\n\x1c.\x1bd\x04\x1dV\x01"))

	cfg.Display, cfg.Keypad, cfg.Printer = hal.DeviceConsole, hal.DeviceConsole, "usblp:"+filepath.Join(dir, "lp0")
	d2, err := Open(cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if _, ok := d2.Printer.(*usblp.Printer); !ok {
		t.Fatalf("printer = %T, want *usblp.Printer", d2.Printer)
	}
}

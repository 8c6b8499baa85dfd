package linuxhw

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/internal/ptytest"
)

func TestOpenOverPtys(t *testing.T) {
	con, card, prn := ptytest.New(t), ptytest.New(t), ptytest.New(t)
	cfg := hal.DefaultConfig()
	cfg.Console, cfg.CardReader, cfg.Printer = con.Path, card.Path, prn.Path
	cfg.Reboot = hal.RebootExit
	d, err := Open(cfg)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hal.DefaultConfig()
			cfg.Console = ptytest.New(t).Path
			cfg.CardReader, cfg.Printer = "", ""
			tt.mod(&cfg)
			d, err := Open(cfg)
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
	d, err := Open(cfg)
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

package haltest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
)

func TestFakes(t *testing.T) {
	d, f := Devices()

	if err := d.Display.Show(hal.Screen{Lines: []string{"MAIN MENU"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Display.Show(hal.Screen{Lines: []string{"0123456789012345678901"}}); err == nil {
		t.Fatal("strict display accepted a 22-column line")
	}
	if !f.Display.Last().Contains("MAIN MENU") || len(f.Display.All()) != 1 {
		t.Fatalf("display recorded %v", f.Display.All())
	}

	f.Keypad.PushString("12\rx\b")
	want := []hal.Key{hal.Key1, hal.Key2, hal.KeyEnter, hal.KeyCancel, hal.KeyClear}
	for _, w := range want {
		if k := <-d.Keypad.Keys(); k != w {
			t.Fatalf("key %v, want %v", k, w)
		}
	}
	f.Keypad.Close()
	if _, ok := <-d.Keypad.Keys(); ok {
		t.Fatal("keypad open after Close")
	}
	f.Keypad.Push(hal.Key1) // no panic after Close

	ev := f.CardReader.Swipe(";6222021234567890=2512101?")
	if got := <-d.CardReader.Swipes(); got != ev || got.Err != nil || got.Track2.PAN != "6222021234567890" {
		t.Fatalf("swipe %+v", got)
	}
	f.CardReader.Swipe("garbage")
	if got := <-d.CardReader.Swipes(); got.Err == nil {
		t.Fatal("garbage swipe has no error")
	}

	d.Printer.Print(hal.Receipt{Lines: []string{"A"}})
	f.Printer.Err = ErrFake
	if err := d.Printer.Print(hal.Receipt{}); !errors.Is(err, ErrFake) || f.Printer.Count() != 1 || f.Printer.Last().Lines[0] != "A" {
		t.Fatalf("printer err %v count %d", err, f.Printer.Count())
	}

	d.LED.SetLED(hal.LEDGreen)
	d.LED.SetLED(hal.LEDRed)
	if f.LED.Get() != hal.LEDRed || len(f.LED.History) != 2 {
		t.Fatalf("LED %v history %v", f.LED.Get(), f.LED.History)
	}
	d.Buzzer.Beep(time.Second)
	if f.Buzzer.Count() != 1 || f.Buzzer.Beeps[0] != time.Second {
		t.Fatalf("beeps %v", f.Buzzer.Beeps)
	}

	f.Tamper.Fire()
	select {
	case <-d.Tamper.Tampered():
	default:
		t.Fatal("tamper did not fire")
	}

	f.Rebooter.Err = hal.ErrRebootExit
	if err := d.Rebooter.Reboot(); !errors.Is(err, hal.ErrRebootExit) || f.Rebooter.Count() != 1 {
		t.Fatalf("reboot %v count %d", err, f.Rebooter.Count())
	}
}

func TestConcurrentUse(t *testing.T) {
	var disp Display
	kp := NewKeypad(1000)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 100 {
				disp.Show(hal.Screen{Lines: []string{"X"}})
				kp.Push(hal.Key0)
				_ = disp.Last()
			}
		})
	}
	wg.Wait()
	if len(disp.All()) != 1000 || len(kp.Keys()) != 1000 {
		t.Fatalf("%d screens %d keys, want 1000 each", len(disp.All()), len(kp.Keys()))
	}
}

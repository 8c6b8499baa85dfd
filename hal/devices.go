package hal

import "errors"

// Devices gathers every port of one terminal, as opened by an adapter
// (simhw.Open, linuxhw.Open) or built by hand from fakes in tests. A port
// the hardware lacks is a no-op implementation, never nil, when opened by an
// adapter. SecureElement is not here: it has its own owner and constructor.
type Devices struct {
	Display    Display
	Keypad     Keypad
	CardReader CardReader
	Printer    Printer
	LED        LED
	Buzzer     Buzzer
	Tamper     Tamper
	Rebooter   Rebooter

	// DisplayFault is why the configured display could not be used (a
	// framebuffer of an unsupported format, a missing device): Display is
	// then the console, where the screens say so. nil when the display is
	// the one configured.
	DisplayFault error

	closers []func() error
}

// OnClose registers f to run at Close. Adapters call it for every device
// they open; functions run in reverse order of registration.
func (d *Devices) OnClose(f func() error) {
	d.closers = append(d.closers, f)
}

// Close releases every device (restoring the TTY mode of a stdio console)
// and returns all the errors met. Calling it twice is harmless.
func (d *Devices) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	d.closers = nil
	return errors.Join(errs...)
}

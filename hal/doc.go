// Package hal declares the hardware ports of the terminal: display, keypad,
// card reader, printer, LED, buzzer, tamper input and rebooter.
//
// The ports are narrow, role-based interfaces in the style of periph.io's
// gpio.PinIn/gpio.PinOut: the terminal core depends on this package only, and
// it deliberately imports no IO package (no os, no serial, no GPIO), so the
// core stays a pure state machine. Adapters live in subpackages:
//
//   - hal/haltest: in-memory fakes with exported fields, for tests.
//   - hal/console: screen rendering and key decoding shared by the stdio and
//     serial consoles.
//   - hal/simhw: the host simulator (Config.Kind == "sim").
//   - hal/linuxhw: the terminal hardware (Config.Kind == "linux"): serial
//     ports through go.bug.st/serial and GPIO through periph.io, and the
//     separate devices of spec/terminal.md "Devices": hal/fbdev (a Linux
//     framebuffer display), hal/evdev (a Linux input keypad), hal/usblp (a
//     USB receipt printer); hal/escpos encodes receipts for both printers.
package hal

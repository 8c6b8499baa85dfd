// Package usblp is the receipt printer on the Linux USB printer class
// driver (printer = "usblp:/dev/usb/lpN", spec/terminal.md "Devices"):
// ESC/POS receipts (hal/escpos, ASCII or GB18030) written to the device,
// and the paper sensor read with DLE EOT 4 on the same device, where the
// printer answers.
//
// Receipts go through a queue: Print returns at once, a worker prints them
// in order. While the printer reports paper out, receipts wait and Print
// says hal.ErrPaperOut (the screen shows PAPER OUT); they print when paper
// is back. A printer that does not answer DLE EOT prints as before (its
// status is unknown, which is not an error). A device that goes away is
// reopened with a backoff, the receipt in hand kept.
package usblp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/escpos"
)

// Device is the printer as the adapter uses it: the usblp character device
// (an *os.File) writes to the printer's bulk-out endpoint and reads its
// answers from bulk-in; the deadline bounds the wait for an answer.
type Device interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
}

// Opener opens the device; the printer calls it again after a failure.
type Opener func() (Device, error)

// Options of the adapter; zero fields take the defaults.
type Options struct {
	ESCPOS escpos.Options
	// StatusTimeout bounds the wait for the answer to DLE EOT; past it
	// the status is unknown and the receipt prints.
	StatusTimeout time.Duration
	// PaperPoll is how often the paper sensor is read again while out.
	PaperPoll time.Duration
	// Queue is the most receipts kept waiting (the oldest print first).
	Queue int
}

// Defaults of Options.
const (
	DefaultStatusTimeout = 300 * time.Millisecond
	DefaultPaperPoll     = time.Second
	DefaultQueue         = 16
)

// Backoff bounds between reopen attempts.
var (
	MinBackoff = 200 * time.Millisecond
	MaxBackoff = 5 * time.Second
)

// ErrQueueFull is returned by Print when Options.Queue receipts already
// wait: this one is not kept (the cashier can reprint it).
var ErrQueueFull = errors.New("printer queue full: receipt not kept")

// ErrOffline is wrapped by Print's error while the device cannot be
// opened or written: the receipt is kept and prints when it is back.
var ErrOffline = errors.New("printer offline")

// DLE EOT n, real-time status transmission (ESC/POS): n = 4 is the paper
// roll sensor. The answer has bit 1 and bit 4 set, bits 0 and 7 clear;
// bits 5-6 set mean paper end, bits 2-3 paper near end.
var cmdPaperStatus = []byte{0x10, 0x04, 0x04}

const (
	statusFixedMask = 0x93
	statusFixed     = 0x12
	statusPaperEnd  = 0x60
)

// Printer is a hal.Printer on a USB printer-class device.
type Printer struct {
	name string
	open Opener
	o    Options
	log  *slog.Logger

	mu      sync.Mutex
	queue   [][]byte
	status  hal.PrinterStatus
	dev     Device
	oddSeen bool // an unknown answer was logged

	wake    chan struct{}
	changes chan hal.PrinterStatus
	done    chan struct{}
	exited  chan struct{}
	once    sync.Once
}

var (
	_ hal.Printer        = (*Printer)(nil)
	_ hal.PrinterMonitor = (*Printer)(nil)
)

// Open starts a printer on the usblp device at path.
func Open(path string, o Options, log *slog.Logger) *Printer {
	return New(path, func() (Device, error) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		return f, nil
	}, o, log)
}

// New starts a printer on what open returns; name is for logs.
func New(name string, open Opener, o Options, log *slog.Logger) *Printer {
	if o.StatusTimeout <= 0 {
		o.StatusTimeout = DefaultStatusTimeout
	}
	if o.PaperPoll <= 0 {
		o.PaperPoll = DefaultPaperPoll
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	p := &Printer{
		name: name, open: open, o: o, log: log,
		wake:    make(chan struct{}, 1),
		changes: make(chan hal.PrinterStatus, 1),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	go p.run()
	return p
}

// Print queues r and returns: nil normally, an error wrapping
// hal.ErrPaperOut or ErrOffline when it will wait for the printer (the
// receipt is kept), ErrQueueFull when it is not kept.
func (p *Printer) Print(r hal.Receipt) error {
	b := escpos.Encode(r, p.o.ESCPOS)
	p.mu.Lock()
	if len(p.queue) >= p.o.Queue {
		p.mu.Unlock()
		return fmt.Errorf("print receipt on %s: %w (%d waiting)", p.name, ErrQueueFull, p.o.Queue)
	}
	p.queue = append(p.queue, b)
	st := p.status
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	switch st {
	case hal.PrinterPaperOut:
		return fmt.Errorf("print receipt on %s: %w: it prints when paper is back", p.name, hal.ErrPaperOut)
	case hal.PrinterOffline:
		return fmt.Errorf("print receipt on %s: %w: it prints when the printer is back", p.name, ErrOffline)
	}
	return nil
}

// PrinterStatus implements hal.PrinterMonitor.
func (p *Printer) PrinterStatus() <-chan hal.PrinterStatus { return p.changes }

// Status returns the last known status.
func (p *Printer) Status() hal.PrinterStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Pending returns the number of receipts waiting.
func (p *Printer) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Close stops the worker and closes the device. Receipts still queued are
// dropped (the journal keeps the transactions; REPRINT LAST prints again).
func (p *Printer) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		<-p.exited
		p.mu.Lock()
		if p.dev != nil {
			err = p.dev.Close()
			p.dev = nil
		}
		if n := len(p.queue); n > 0 {
			p.log.Warn("printer closed with receipts unprinted", slog.String("printer", p.name), slog.Int("receipts", n))
		}
		p.mu.Unlock()
	})
	return err
}

func (p *Printer) setStatus(st hal.PrinterStatus) {
	p.mu.Lock()
	old := p.status
	p.status = st
	p.mu.Unlock()
	if st == old {
		return
	}
	switch {
	case st == hal.PrinterPaperOut:
		p.log.Warn("printer out of paper; receipts wait", slog.String("printer", p.name))
	case old == hal.PrinterPaperOut || old == hal.PrinterOffline:
		p.log.Info("printer back", slog.String("printer", p.name), slog.String("status", st.String()))
	}
	// Keep the latest change only.
	select {
	case <-p.changes:
	default:
	}
	p.changes <- st
}

// sleep waits d; false when the printer is closed meanwhile.
func (p *Printer) sleep(d time.Duration) bool {
	select {
	case <-p.done:
		return false
	case <-time.After(d):
		return true
	}
}

func (p *Printer) run() {
	defer close(p.exited)
	backoff := MinBackoff
	for {
		p.mu.Lock()
		var next []byte
		if len(p.queue) > 0 {
			next = p.queue[0]
		}
		dev := p.dev
		p.mu.Unlock()
		if next == nil {
			select {
			case <-p.done:
				return
			case <-p.wake:
			}
			continue
		}
		if dev == nil {
			d, err := p.open()
			if err != nil {
				if p.Status() != hal.PrinterOffline {
					p.log.Error("printer unavailable; receipts wait", slog.String("printer", p.name), slog.String("err", err.Error()))
				}
				p.setStatus(hal.PrinterOffline)
				if !p.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, MaxBackoff)
				continue
			}
			p.mu.Lock()
			p.dev, dev = d, d
			p.mu.Unlock()
			backoff = MinBackoff
		}
		st := p.paperStatus(dev)
		if st == hal.PrinterPaperOut {
			p.setStatus(st)
			if !p.sleep(p.o.PaperPoll) {
				return
			}
			continue
		}
		p.setStatus(st)
		if err := p.write(dev, next); err != nil {
			p.log.Error("printer write failed; reopening", slog.String("printer", p.name), slog.String("err", err.Error()))
			p.mu.Lock()
			p.dev.Close()
			p.dev = nil
			p.mu.Unlock()
			p.setStatus(hal.PrinterOffline)
			if !p.sleep(backoff) {
				return
			}
			continue
		}
		p.mu.Lock()
		p.queue = p.queue[1:]
		p.mu.Unlock()
	}
}

func (p *Printer) write(dev Device, b []byte) error {
	n, err := dev.Write(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("%w (%d of %d bytes)", io.ErrShortWrite, n, len(b))
	}
	return err
}

// paperStatus asks the paper sensor (DLE EOT 4). No answer within
// StatusTimeout is PrinterUnknown; an answer that is not a status byte is
// logged once and is PrinterUnreadable.
func (p *Printer) paperStatus(dev Device) hal.PrinterStatus {
	var buf [16]byte
	// A late answer to an earlier request would be read as this one's.
	if dev.SetReadDeadline(time.Now()) != nil {
		return hal.PrinterUnknown // cannot bound the wait: do not ask
	}
	for {
		if n, err := dev.Read(buf[:]); n == 0 || err != nil {
			break
		}
	}
	if _, err := dev.Write(cmdPaperStatus); err != nil {
		return hal.PrinterUnknown // the receipt's write reports the fault
	}
	dev.SetReadDeadline(time.Now().Add(p.o.StatusTimeout))
	n, err := dev.Read(buf[:1])
	if n == 0 || err != nil {
		return hal.PrinterUnknown
	}
	b := buf[0]
	if b&statusFixedMask != statusFixed {
		p.mu.Lock()
		first := !p.oddSeen
		p.oddSeen = true
		p.mu.Unlock()
		if first {
			p.log.Warn("printer answered DLE EOT 4 (paper sensor) with a byte that is not a status; printing without paper status",
				slog.String("printer", p.name), slog.String("answer", fmt.Sprintf("%#02x", b)))
		}
		return hal.PrinterUnreadable
	}
	if b&statusPaperEnd == statusPaperEnd {
		return hal.PrinterPaperOut
	}
	return hal.PrinterReady
}

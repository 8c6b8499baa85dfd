// Package magstripe reads a magnetic-stripe card reader that sends one
// track-2 line per swipe (";PAN=YYMM...?" then CR and/or LF), as serial
// readers in keyboard-less "ASCII mode" do, and turns the lines into
// hal.CardEvents. The byte source is opened, and reopened after an error,
// by a function the adapter supplies (a serial port, a pty, a FIFO).
package magstripe

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/posagent/posagent/hal"
)

// MaxLine is the longest line accepted: a track-2 image is at most 40
// characters; anything much longer is noise on the line, not a card.
const MaxLine = 128

// ErrLineTooLong is the CardEvent error of a line longer than MaxLine.
var ErrLineTooLong = errors.New("card reader line too long")

// Backoff bounds between reopen attempts, read by New.
var (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second
)

// Opener opens the byte source of the reader.
type Opener func() (io.ReadCloser, error)

// Reader is a hal.CardReader over lines of bytes.
type Reader struct {
	name   string
	open   Opener
	events chan hal.CardEvent
	minB   time.Duration
	maxB   time.Duration
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
	log    *slog.Logger

	mu  sync.Mutex
	cur io.Closer
}

var _ hal.CardReader = (*Reader)(nil)

// New starts reading from what open returns; name is for logs. A read error
// or EOF closes the source and opens it again after a backoff (a reader
// unplugged from a USB-serial adapter comes back).
func New(name string, open Opener, log *slog.Logger) *Reader {
	r := &Reader{
		name:   name,
		open:   open,
		events: make(chan hal.CardEvent, 4),
		minB:   MinBackoff,
		maxB:   MaxBackoff,
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		log:    log,
	}
	go r.run()
	return r
}

// Swipes implements hal.CardReader. The channel closes after Close.
func (r *Reader) Swipes() <-chan hal.CardEvent { return r.events }

// Close stops the reader and closes the source. It waits for the reader
// goroutine when closing the source unblocks its Read (serial ports, ptys
// and FIFOs opened non-blocking do).
func (r *Reader) Close() error {
	var err error
	r.once.Do(func() {
		close(r.done)
		r.mu.Lock()
		if r.cur != nil {
			err = r.cur.Close()
			r.cur = nil
		}
		r.mu.Unlock()
		select {
		case <-r.exited:
		case <-time.After(time.Second):
		}
	})
	return err
}

func (r *Reader) closed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *Reader) run() {
	defer close(r.exited)
	defer close(r.events)
	backoff := r.minB
	for !r.closed() {
		src, err := r.open()
		if err != nil {
			r.log.Warn("card reader open failed; retrying", "reader", r.name, "err", err, "in", backoff)
		} else {
			r.mu.Lock()
			if r.closed() {
				r.mu.Unlock()
				src.Close()
				return
			}
			r.cur = src
			r.mu.Unlock()
			start := time.Now()
			err = r.readLines(src)
			r.mu.Lock()
			if r.cur != nil {
				r.cur.Close()
				r.cur = nil
			}
			r.mu.Unlock()
			if r.closed() {
				return
			}
			if time.Since(start) > r.maxB {
				backoff = r.minB // it worked for a while
			}
			r.log.Warn("card reader input ended; reopening", "reader", r.name, "err", err, "in", backoff)
		}
		select {
		case <-r.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, r.maxB)
	}
}

// readLines delivers every line of src until a read error, which it returns
// (io.EOF included).
func (r *Reader) readLines(src io.Reader) error {
	var (
		buf     = make([]byte, 256)
		line    = make([]byte, 0, MaxLine)
		tooLong bool
	)
	for {
		n, err := src.Read(buf)
		for _, b := range buf[:n] {
			if b != '\r' && b != '\n' {
				if len(line) < MaxLine {
					line = append(line, b)
				} else {
					tooLong = true
				}
				continue
			}
			if !r.line(line, tooLong) {
				return nil
			}
			line, tooLong = line[:0], false
		}
		if err != nil {
			// A last line without its terminator still counts at EOF (a
			// FIFO writer that closed); after another error it is a broken
			// swipe and is dropped.
			if errors.Is(err, io.EOF) && !r.line(line, tooLong) {
				return nil
			}
			return err
		}
	}
}

// line delivers one line; it reports false when the reader is closed.
func (r *Reader) line(line []byte, tooLong bool) bool {
	if len(line) == 0 && !tooLong {
		return true // the LF of CR LF, or a blank line
	}
	var ev hal.CardEvent
	if tooLong {
		ev.Err = fmt.Errorf("%w: over %d bytes", ErrLineTooLong, MaxLine)
	} else {
		ev.Track2, ev.Err = hal.ParseTrack2(string(line))
	}
	if ev.Err != nil {
		r.log.Info("unreadable card swipe", "reader", r.name, "err", ev.Err)
	} else {
		r.log.Debug("card swiped", "reader", r.name, "card", ev.Track2)
	}
	select {
	case r.events <- ev:
		return true
	case <-r.done:
		return false
	}
}

package console

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/posagent/posagent/hal"
)

// Console is the operator display and keypad over a byte stream: screens are
// rendered to w, keys decoded from r by a reader goroutine.
//
// When r ends (EOF, or a read error such as a closed port) the Keys channel
// is closed after any pending lone ESC is delivered as Cancel. The daemon
// keeps running without a keypad: remote commands still work, and a harness
// that pipes a script into stdin may close it when done.
type Console struct {
	w       io.Writer
	wmu     sync.Mutex
	keys    chan hal.Key
	done    chan struct{}
	once    sync.Once
	onClose func() error
	closeEr error
	timeout time.Duration
	log     *slog.Logger
}

var (
	_ hal.Display = (*Console)(nil)
	_ hal.Keypad  = (*Console)(nil)
)

// New starts a console reading keys from r and showing screens on w.
// onClose, if not nil, runs once at Close (to close the port, restore the
// TTY mode); it should make a blocked r.Read return. log gets the end of
// the input.
func New(r io.Reader, w io.Writer, onClose func() error, log *slog.Logger) *Console {
	c := &Console{
		w:       w,
		keys:    make(chan hal.Key, 32),
		done:    make(chan struct{}),
		onClose: onClose,
		timeout: EscTimeout,
		log:     log,
	}
	chunks := make(chan []byte)
	go c.read(r, chunks)
	go c.decode(chunks)
	return c
}

// Show renders s (see Render).
func (c *Console) Show(s hal.Screen) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return Render(c.w, s)
}

// Keys implements hal.Keypad.
func (c *Console) Keys() <-chan hal.Key { return c.keys }

// Close stops key delivery and runs the onClose function given to New.
// A reader goroutine blocked on a Read that onClose cannot interrupt (a
// terminal stdin) stays blocked until the process exits; it delivers
// nothing more.
func (c *Console) Close() error {
	c.once.Do(func() {
		close(c.done)
		if c.onClose != nil {
			c.closeEr = c.onClose()
		}
	})
	return c.closeEr
}

// read copies r into chunks until an error; a nil chunk reports the end.
func (c *Console) read(r io.Reader, chunks chan<- []byte) {
	buf := make([]byte, 256)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case chunks <- append([]byte(nil), buf[:n]...):
			case <-c.done:
				return
			}
		}
		if err != nil {
			select {
			case <-c.done:
			default:
				if !errors.Is(err, io.EOF) {
					c.log.Warn("console input ended", "err", err)
				} else {
					c.log.Info("console input reached EOF; keypad closed")
				}
			}
			close(chunks)
			return
		}
	}
}

// decode runs the Decoder over the chunks, with the ESC timer.
func (c *Console) decode(chunks <-chan []byte) {
	defer close(c.keys)
	var (
		d     Decoder
		keys  []hal.Key
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for {
		var tc <-chan time.Time
		if d.Pending() {
			tc = timer.C
		}
		select {
		case <-c.done:
			return
		case chunk, ok := <-chunks:
			if !ok {
				c.send(d.Timeout(keys[:0]))
				return
			}
			keys = keys[:0]
			for _, b := range chunk {
				keys = d.Feed(keys, b)
			}
			if !c.send(keys) {
				return
			}
			if d.Pending() {
				timer.Reset(c.timeout)
			}
		case <-tc:
			if !c.send(d.Timeout(keys[:0])) {
				return
			}
		}
	}
}

func (c *Console) send(keys []hal.Key) bool {
	for _, k := range keys {
		select {
		case c.keys <- k:
		case <-c.done:
			return false
		}
	}
	return true
}

// Package evdev is the keypad on a Linux input device
// (keypad = "evdev:/dev/input/eventN", spec/terminal.md "Devices"): it
// reads struct input_event records, turns key presses into hal.Keys and
// ignores everything else (releases, autorepeat, other keys, other event
// types). The device is grabbed (EVIOCGRAB) so its keys do not also reach
// a login console, and reopened with a backoff when it goes away (a USB
// keypad unplugged, a driver reloaded).
package evdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/posagent/posagent/hal"
)

// Layout is the size of one input_event record: a struct timeval (two C
// longs) then type (u16), code (u16), value (s32).
type Layout int

// The two layouts of struct input_event. A 32-bit ARM kernel and its
// userland use the 16-byte one; a 64-bit kernel the 24-byte one (its
// 32-bit compat layer converts for 32-bit processes).
const (
	Layout32 Layout = 16
	Layout64 Layout = 24
)

// NativeLayout is the layout of this build: the size of the platform's
// struct timeval plus 8.
const NativeLayout = Layout(unsafe.Sizeof(unix.Timeval{}) + 8)

// linux/input-event-codes.h.
const (
	evKey = 0x01

	keyEsc       = 1
	key1         = 2 // KEY_1..KEY_9 are 2..10, KEY_0 is 11
	key0         = 11
	keyBackspace = 14
	keyEnter     = 28
	keyKP7       = 71
	keyKP8       = 72
	keyKP9       = 73
	keyKP4       = 75
	keyKP5       = 76
	keyKP6       = 77
	keyKP1       = 79
	keyKP2       = 80
	keyKP3       = 81
	keyKP0       = 82
	keyKPEnter   = 96
	keyDelete    = 111
	keyCancel    = 223

	valuePress = 1 // 0 is a release, 2 an autorepeat
)

// keymap is the key map of spec/terminal.md "Devices".
var keymap = map[uint16]hal.Key{
	key0: hal.Key0, keyKP0: hal.Key0,
	keyKP1: hal.Key1, keyKP2: hal.Key2, keyKP3: hal.Key3, keyKP4: hal.Key4,
	keyKP5: hal.Key5, keyKP6: hal.Key6, keyKP7: hal.Key7, keyKP8: hal.Key8, keyKP9: hal.Key9,
	keyEnter: hal.KeyEnter, keyKPEnter: hal.KeyEnter,
	keyEsc: hal.KeyCancel, keyCancel: hal.KeyCancel,
	keyBackspace: hal.KeyClear, keyDelete: hal.KeyClear,
}

func init() {
	for i := range 9 {
		keymap[uint16(key1+i)] = hal.Key1 + hal.Key(i)
	}
}

// Decode returns the key of one input_event record in layout l, and false
// for a record that is not a press of a mapped key. Records are in the
// machine's byte order (little-endian on the ARM and x86 terminals).
func Decode(rec []byte, l Layout) (hal.Key, bool) {
	if len(rec) != int(l) {
		return 0, false
	}
	p := rec[l-8:] // after the timeval
	typ := binary.LittleEndian.Uint16(p[0:])
	code := binary.LittleEndian.Uint16(p[2:])
	value := int32(binary.LittleEndian.Uint32(p[4:]))
	if typ != evKey || value != valuePress {
		return 0, false
	}
	k, ok := keymap[code]
	return k, ok
}

// Encode builds the record of a key event in layout l (for tests and for
// tools that inject keys).
func Encode(l Layout, code uint16, value int32) []byte {
	rec := make([]byte, l)
	p := rec[l-8:]
	binary.LittleEndian.PutUint16(p[0:], evKey)
	binary.LittleEndian.PutUint16(p[2:], code)
	binary.LittleEndian.PutUint32(p[4:], uint32(value))
	return rec
}

// Codes of the keys of the map, for tests.
const (
	CodeEnter     = keyEnter
	CodeKPEnter   = keyKPEnter
	CodeEsc       = keyEsc
	CodeCancel    = keyCancel
	CodeBackspace = keyBackspace
	CodeDelete    = keyDelete
	CodeKP0       = keyKP0
	CodeKP5       = keyKP5
	Code0         = key0
	Code1         = key1
)

// Opener opens the device; the keypad calls it again after the device
// went away.
type Opener func() (io.ReadCloser, error)

// Backoff bounds between reopen attempts.
var (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second
)

// Keypad is a hal.Keypad on an input device.
type Keypad struct {
	name   string
	open   Opener
	layout Layout
	log    *slog.Logger
	keys   chan hal.Key
	// present reports the device gone (false) and back (true), latest
	// change only (hal.KeypadMonitor).
	present chan bool
	done    chan struct{}
	exited  chan struct{}
	once    sync.Once

	mu  sync.Mutex
	cur io.Closer
}

var (
	_ hal.Keypad        = (*Keypad)(nil)
	_ hal.KeypadMonitor = (*Keypad)(nil)
)

// Open starts reading the device at path (native layout). A missing
// device is not an error: it is logged once and looked for again with a
// backoff, as after an unplug.
func Open(path string, log *slog.Logger) *Keypad {
	return New(path, NativeLayout, func() (io.ReadCloser, error) { return openDevice(path, log) }, log)
}

// New starts reading records of layout l from what open returns; name is
// for logs.
func New(name string, l Layout, open Opener, log *slog.Logger) *Keypad {
	k := &Keypad{
		name: name, open: open, layout: l, log: log,
		keys:    make(chan hal.Key, 32),
		present: make(chan bool, 1),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	go k.run()
	return k
}

// Keys implements hal.Keypad. The channel closes after Close only: a
// keypad that went away comes back on the same channel.
func (k *Keypad) Keys() <-chan hal.Key { return k.keys }

// KeypadPresent implements hal.KeypadMonitor: false when the device is
// missing or went away (the screen says so), true when it is back.
func (k *Keypad) KeypadPresent() <-chan bool { return k.present }

func (k *Keypad) setPresent(p bool) {
	select {
	case <-k.present: // keep the latest change only
	default:
	}
	k.present <- p
}

// Close stops the reader and releases the device (and its grab).
func (k *Keypad) Close() error {
	var err error
	k.once.Do(func() {
		close(k.done)
		k.mu.Lock()
		if k.cur != nil {
			err = k.cur.Close()
			k.cur = nil
		}
		k.mu.Unlock()
		select {
		case <-k.exited:
		case <-time.After(time.Second):
		}
	})
	return err
}

func (k *Keypad) closed() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// run opens, reads until the device goes away, and opens again. It logs
// the transitions only (gone, back), never each failed attempt.
func (k *Keypad) run() {
	defer close(k.exited)
	defer close(k.keys)
	backoff := MinBackoff
	missing := false
	for !k.closed() {
		src, err := k.open()
		if err != nil {
			if !missing {
				k.log.Error("keypad unavailable; retrying until it appears", slog.String("keypad", k.name), slog.String("err", err.Error()))
				missing = true
				k.setPresent(false)
			}
		} else {
			k.mu.Lock()
			if k.closed() {
				k.mu.Unlock()
				src.Close()
				return
			}
			k.cur = src
			k.mu.Unlock()
			if missing {
				k.log.Info("keypad connected", slog.String("keypad", k.name))
				missing = false
				k.setPresent(true)
			}
			backoff = MinBackoff
			err = k.read(src)
			k.mu.Lock()
			if k.cur != nil {
				k.cur.Close()
				k.cur = nil
			}
			k.mu.Unlock()
			if k.closed() {
				return
			}
			k.log.Warn("keypad input ended; reopening", slog.String("keypad", k.name), slog.String("err", errString(err)))
			missing = true
			k.setPresent(false)
		}
		select {
		case <-k.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, MaxBackoff)
	}
}

func errString(err error) string {
	if err == nil {
		return "EOF"
	}
	return err.Error()
}

// read delivers the presses of src until a read error, which it returns
// (io.EOF and ENODEV included). A record split across reads (a pipe) is
// reassembled.
func (k *Keypad) read(src io.Reader) error {
	rec := make([]byte, k.layout)
	for {
		if _, err := io.ReadFull(src, rec); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			return err
		}
		key, ok := Decode(rec, k.layout)
		if !ok {
			continue
		}
		select {
		case k.keys <- key:
		case <-k.done:
			return nil
		}
	}
}

// eviocgrab is EVIOCGRAB, _IOW('E', 0x90, int).
const eviocgrab = 0x40044590

// openDevice opens an input device and grabs it, so its keys reach only
// posagentd (not a getty on the same VT). A file that is not an input
// device (a FIFO in tests) answers ENOTTY or EINVAL and is read as is.
// A failed grab (EBUSY) is logged, and the keypad used all the same.
func openDevice(path string, log *slog.Logger) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var errno unix.Errno
	if cerr := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, eviocgrab, 1)
	}); cerr != nil {
		f.Close()
		return nil, cerr
	}
	switch errno {
	case 0, unix.ENOTTY, unix.EINVAL:
	case unix.ENOSYS:
		// qemu-user (the ARM test runs) answers ioctls it does not
		// translate with ENOSYS; a kernel never does for EVIOCGRAB.
	default:
		// EBUSY: another process holds the grab. Keys still come, so the
		// keypad is used; the log says why they may also reach it.
		log.Warn("keypad not grabbed; its keys may also reach another reader",
			slog.String("keypad", path), slog.String("err", fmt.Sprintf("EVIOCGRAB: %v", errno)))
	}
	return f, nil
}

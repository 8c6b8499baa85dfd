package evdev

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
)

// press, repeat and release of one key, as a keypad sends them.
func stroke(l Layout, code uint16) []byte {
	var b []byte
	b = append(b, Encode(l, code, 1)...)
	b = append(b, Encode(l, code, 2)...)
	b = append(b, Encode(l, code, 0)...)
	return b
}

// syn is an EV_SYN record, which follows every key event.
func syn(l Layout) []byte { return make([]byte, l) }

func TestDecodeBothLayouts(t *testing.T) {
	for _, l := range []Layout{Layout32, Layout64} {
		cases := []struct {
			code  uint16
			value int32
			want  hal.Key
			ok    bool
		}{
			{Code1, 1, hal.Key1, true},
			{Code1 + 8, 1, hal.Key9, true},
			{Code0, 1, hal.Key0, true},
			{CodeKP0, 1, hal.Key0, true},
			{CodeKP5, 1, hal.Key5, true},
			{CodeEnter, 1, hal.KeyEnter, true},
			{CodeKPEnter, 1, hal.KeyEnter, true},
			{CodeEsc, 1, hal.KeyCancel, true},
			{CodeCancel, 1, hal.KeyCancel, true},
			{CodeBackspace, 1, hal.KeyClear, true},
			{CodeDelete, 1, hal.KeyClear, true},
			{Code1, 0, 0, false}, // release
			{Code1, 2, 0, false}, // autorepeat
			{30, 1, 0, false},    // KEY_A
			{0x200, 1, 0, false}, // KEY_NUMERIC_0: not in the spec's map
			{CodeKP0, -1, 0, false},
		}
		for _, c := range cases {
			got, ok := Decode(Encode(l, c.code, c.value), l)
			if got != c.want || ok != c.ok {
				t.Errorf("layout %d: code %d value %d = %v %v, want %v %v", l, c.code, c.value, got, ok, c.want, c.ok)
			}
		}
		// The timeval is not read: a record with one set decodes the same.
		rec := Encode(l, CodeEnter, 1)
		for i := range int(l) - 8 {
			rec[i] = 0xEE
		}
		if k, ok := Decode(rec, l); !ok || k != hal.KeyEnter {
			t.Errorf("layout %d: record with a timestamp = %v %v", l, k, ok)
		}
		// EV_SYN and EV_MSC (scan codes) are ignored.
		msc := Encode(l, CodeEnter, 1)
		msc[l-8] = 0x04
		if _, ok := Decode(msc, l); ok {
			t.Errorf("layout %d: EV_MSC decoded as a key", l)
		}
		if _, ok := Decode(syn(l), l); ok {
			t.Errorf("layout %d: EV_SYN decoded as a key", l)
		}
	}
	// A 32-bit record read as a 64-bit one (or the reverse) is refused.
	if _, ok := Decode(Encode(Layout32, CodeEnter, 1), Layout64); ok {
		t.Error("a 16-byte record decoded in the 24-byte layout")
	}
}

func TestNativeLayout(t *testing.T) {
	want := Layout64
	if is32bit() {
		want = Layout32
	}
	if NativeLayout != want {
		t.Fatalf("NativeLayout = %d, want %d", NativeLayout, want)
	}
}

func is32bit() bool { return ^uint(0)>>32 == 0 }

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func expectKeys(t *testing.T, k *Keypad, want ...hal.Key) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-k.Keys():
			if got != w {
				t.Fatalf("key %d = %v, want %v", i, got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("key %d (%v) never came", i, w)
		}
	}
	select {
	case got := <-k.Keys():
		t.Fatalf("extra key %v", got)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestFIFO: records written through a FIFO, as a keypad driver would
// deliver them (press, autorepeat, release, EV_SYN), opened by path with
// the grab (a FIFO answers EVIOCGRAB with ENOTTY), in this build's layout;
// a record split across two writes is reassembled.
func TestFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "event0")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := newLog()
	k := Open(path, log)
	defer k.Close()
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	l := NativeLayout
	var b []byte
	for _, c := range []uint16{Code1, Code1 + 1, CodeKP0, CodeBackspace, CodeKPEnter, CodeEsc} {
		b = append(b, stroke(l, c)...)
		b = append(b, syn(l)...)
	}
	half := len(b)/2 + 3 // not on a record boundary
	if _, err := w.Write(b[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := w.Write(b[half:]); err != nil {
		t.Fatal(err)
	}
	expectKeys(t, k, hal.Key1, hal.Key2, hal.Key0, hal.KeyClear, hal.KeyEnter, hal.KeyCancel)
	if s := logs.String(); s != "" {
		t.Errorf("logged %q for a device that worked", s)
	}
}

// TestBothLayoutsThroughAPipe: the reader decodes the layout it is given,
// so the ARMv7 build's 16-byte records and the 24-byte ones both drive it.
func TestBothLayoutsThroughAPipe(t *testing.T) {
	for _, l := range []Layout{Layout32, Layout64} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		opened := false
		log, _ := newLog()
		k := New("pipe", l, func() (io.ReadCloser, error) {
			if opened {
				return nil, errors.New("gone")
			}
			opened = true
			return r, nil
		}, log)
		var b []byte
		for _, c := range []uint16{Code1 + 4, Code0, CodeEnter} {
			b = append(b, stroke(l, c)...)
			b = append(b, syn(l)...)
		}
		w.Write(b)
		expectKeys(t, k, hal.Key5, hal.Key0, hal.KeyEnter)
		w.Close()
		k.Close()
	}
}

// TestReopen: a missing device is logged once however many attempts fail;
// a device that goes away (EOF, ENODEV) is reopened and its keys come on
// the same channel.
func TestReopen(t *testing.T) {
	oldMin, oldMax := MinBackoff, MaxBackoff
	MinBackoff, MaxBackoff = time.Millisecond, 5*time.Millisecond
	defer func() { MinBackoff, MaxBackoff = oldMin, oldMax }()

	type src struct {
		r   io.ReadCloser
		err error
	}
	srcs := make(chan src, 16)
	for range 5 {
		srcs <- src{err: os.ErrNotExist}
	}
	r1, w1, _ := os.Pipe()
	srcs <- src{r: r1}
	for range 3 {
		srcs <- src{err: syscall.ENODEV}
	}
	r2, w2, _ := os.Pipe()
	srcs <- src{r: r2}
	log, logs := newLog()
	k := New("event3", NativeLayout, func() (io.ReadCloser, error) {
		select {
		case s := <-srcs:
			return s.r, s.err
		default:
			return nil, os.ErrNotExist
		}
	}, log)
	defer k.Close()

	w1.Write(append(stroke(NativeLayout, Code1), syn(NativeLayout)...))
	expectKeys(t, k, hal.Key1)
	w1.Close() // unplugged
	w2.Write(stroke(NativeLayout, Code1+2))
	expectKeys(t, k, hal.Key3)
	defer w2.Close()

	s := logs.String()
	if n := strings.Count(s, "keypad unavailable"); n != 1 {
		t.Errorf("%d 'unavailable' lines for 5 failed opens, want 1:\n%s", n, s)
	}
	if n := strings.Count(s, "keypad input ended"); n != 1 {
		t.Errorf("%d 'input ended' lines, want 1:\n%s", n, s)
	}
	if n := strings.Count(s, "keypad connected"); n != 2 {
		t.Errorf("%d 'connected' lines, want 2 (after the missing start, after the unplug):\n%s", n, s)
	}
	if !strings.Contains(s, "level=ERROR") || !strings.Contains(s, "event3") {
		t.Errorf("the missing device is not one clear error line naming it:\n%s", s)
	}
}

func TestCloseEndsKeys(t *testing.T) {
	log, _ := newLog()
	k := Open(filepath.Join(t.TempDir(), "missing"), log)
	k.Close()
	select {
	case _, ok := <-k.Keys():
		if ok {
			t.Fatal("a key after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Keys not closed after Close")
	}
}

// TestPresent: the keypad reports the device missing at start, back once
// it opens, gone when its input ends (the screen says so meanwhile).
func TestPresent(t *testing.T) {
	oldMin, oldMax := MinBackoff, MaxBackoff
	MinBackoff, MaxBackoff = time.Millisecond, 5*time.Millisecond
	defer func() { MinBackoff, MaxBackoff = oldMin, oldMax }()
	srcs := make(chan io.ReadCloser, 1)
	log, _ := newLog()
	k := New("event4", NativeLayout, func() (io.ReadCloser, error) {
		select {
		case r := <-srcs:
			return r, nil
		default:
			return nil, os.ErrNotExist
		}
	}, log)
	defer k.Close()
	wait := func(want bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case p := <-k.KeypadPresent():
				if p == want {
					return
				}
			case <-deadline:
				t.Fatalf("keypad present never reported %v", want)
			}
		}
	}
	wait(false) // missing at start
	r, w, _ := os.Pipe()
	srcs <- r
	wait(true)
	w.Write(stroke(NativeLayout, Code1))
	expectKeys(t, k, hal.Key1)
	w.Close() // unplugged
	wait(false)
}

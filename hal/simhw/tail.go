package simhw

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// tailPoll is how often a followed regular file is checked for new bytes.
var tailPoll = 100 * time.Millisecond

// tail follows a regular file like tail -n0 -f: it starts at the current end
// (old lines are old swipes, not new ones) and waits for appended bytes. A
// truncated file is read again from the start.
type tail struct {
	f    *os.File
	off  int64
	poll time.Duration
	done chan struct{}
	once sync.Once
}

func newTail(f *os.File) *tail {
	t := &tail{f: f, poll: tailPoll, done: make(chan struct{})}
	if off, err := f.Seek(0, io.SeekEnd); err == nil {
		t.off = off
	}
	return t
}

func (t *tail) Read(p []byte) (int, error) {
	for {
		if fi, err := t.f.Stat(); err == nil && fi.Size() < t.off {
			t.off = 0 // truncated
		}
		n, err := t.f.ReadAt(p, t.off)
		t.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		select {
		case <-t.done:
			return 0, os.ErrClosed
		case <-time.After(t.poll):
		}
	}
}

func (t *tail) Close() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		err = t.f.Close()
	})
	return err
}

package magstripe

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
)

func next(t *testing.T, r *Reader) hal.CardEvent {
	t.Helper()
	select {
	case ev, ok := <-r.Swipes():
		if !ok {
			t.Fatal("swipes channel closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no swipe")
	}
	return hal.CardEvent{}
}

func TestLines(t *testing.T) {
	const good = ";6222021234567890123=25121011234567890?"
	tests := []struct {
		name  string
		input string
		want  []string // PAN, or "err:<text>"
	}{
		{"CRLF", good + "\r\n", []string{"6222021234567890123"}},
		{"CR only", good + "\r", []string{"6222021234567890123"}},
		{"LF only, two swipes", good + "\n;123456789012=2601101?\n", []string{"6222021234567890123", "123456789012"}},
		{"blank lines skipped", "\r\n\n" + good + "\n\n", []string{"6222021234567890123"}},
		{"last line at EOF", good, []string{"6222021234567890123"}},
		{"unreadable swipe", ";E?\r\n" + good + "\n", []string{"err:bad track 2", "6222021234567890123"}},
		{"line noise too long", strings.Repeat("~", 500) + "\n" + good + "\n", []string{"err:too long", "6222021234567890123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var once sync.Once
			r := New("test", func() (io.ReadCloser, error) {
				var rc io.ReadCloser = io.NopCloser(strings.NewReader(""))
				once.Do(func() { rc = io.NopCloser(strings.NewReader(tt.input)) })
				return rc, nil
			}, discard)
			defer r.Close()
			for _, w := range tt.want {
				ev := next(t, r)
				if e, ok := strings.CutPrefix(w, "err:"); ok {
					if ev.Err == nil || !strings.Contains(ev.Err.Error(), e) {
						t.Fatalf("event err %v, want %q", ev.Err, e)
					}
					continue
				}
				if ev.Err != nil || ev.Track2.PAN != w {
					t.Fatalf("event %v err %v, want PAN %s", ev.Track2, ev.Err, hal.MaskPAN(w))
				}
			}
		})
	}
}

// TestReopen: the source fails to open, then breaks, and the reader comes
// back each time.
func TestReopen(t *testing.T) {
	MinBackoff = time.Millisecond
	defer func() { MinBackoff = 100 * time.Millisecond }()

	var mu sync.Mutex
	opens := 0
	pr, pw := io.Pipe()
	r := New("test", func() (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		switch opens {
		case 1:
			return nil, errors.New("no such device")
		case 2:
			// A broken swipe then a read error: the partial line is dropped.
			return io.NopCloser(io.MultiReader(strings.NewReader(";6222021234"), errReader{})), nil
		default:
			return pr, nil
		}
	}, discard)
	defer r.Close()
	go pw.Write([]byte(";123456789012=2601101?\r\n"))
	ev := next(t, r)
	if ev.Err != nil || ev.Track2.PAN != "123456789012" {
		t.Fatalf("after reopen: %v err %v", ev.Track2, ev.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if opens != 3 {
		t.Fatalf("%d opens, want 3", opens)
	}
}

type errReader struct{}

var discard = slog.New(slog.DiscardHandler)

func (errReader) Read([]byte) (int, error) { return 0, errors.New("EIO") }

func TestCloseUnblocksAndClosesChannel(t *testing.T) {
	pr, _ := io.Pipe()
	r := New("test", func() (io.ReadCloser, error) { return pr, nil }, discard)
	time.Sleep(20 * time.Millisecond) // let it block in Read
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-r.Swipes():
		if ok {
			t.Fatal("event after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("swipes channel not closed after Close")
	}
}

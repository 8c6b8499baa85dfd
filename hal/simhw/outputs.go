package simhw

import (
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/posagent/posagent/hal"
)

// LogLED is the simulator's LED: a debug log line per change.
type LogLED struct{ Log *slog.Logger }

// SetLED logs s.
func (l LogLED) SetLED(s hal.LEDState) error {
	l.Log.Debug("sim LED", "state", s)
	return nil
}

// LogBuzzer is the simulator's buzzer: a debug log line per beep.
type LogBuzzer struct{ Log *slog.Logger }

// Beep logs d.
func (b LogBuzzer) Beep(d time.Duration) error {
	b.Log.Debug("sim buzzer beep", "duration", d)
	return nil
}

var (
	_ hal.LED    = LogLED{}
	_ hal.Buzzer = LogBuzzer{}
	_ hal.Tamper = (*TamperFileWatcher)(nil)
)

// TamperPoll is how often the tamper file is looked for.
var TamperPoll = time.Second

// TamperFileWatcher fires one tamper event each time its file appears, then
// removes the file so the next creation is the next event.
type TamperFileWatcher struct {
	path string
	poll time.Duration
	ch   chan struct{}
	done chan struct{}
	exit chan struct{}
	once sync.Once
	log  *slog.Logger
}

// WatchTamperFile starts polling for path every TamperPoll.
func WatchTamperFile(path string, log *slog.Logger) *TamperFileWatcher {
	w := &TamperFileWatcher{path: path, poll: TamperPoll, log: log, ch: make(chan struct{}, 1), done: make(chan struct{}), exit: make(chan struct{})}
	go w.run()
	return w
}

// Tampered implements hal.Tamper.
func (w *TamperFileWatcher) Tampered() <-chan struct{} { return w.ch }

// Close stops polling.
func (w *TamperFileWatcher) Close() error {
	w.once.Do(func() {
		close(w.done)
		<-w.exit
	})
	return nil
}

func (w *TamperFileWatcher) run() {
	defer close(w.exit)
	t := time.NewTicker(w.poll)
	defer t.Stop()
	fired := false // file seen and not yet removed (removal failed)
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		_, err := os.Lstat(w.path)
		if err != nil {
			fired = false
			continue
		}
		if !fired {
			w.log.Warn("sim tamper triggered", "file", w.path)
			select {
			case w.ch <- struct{}{}:
			default: // one event already waiting: the core has not read it yet
			}
			fired = true
		}
		if err := os.Remove(w.path); err != nil {
			w.log.Warn("sim tamper: cannot remove trigger file; it fires again only once removed", "file", w.path, "err", err)
			continue
		}
		fired = false
	}
}

package main

import (
	"log/slog"
	"sync"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"github.com/posagent/posagent/terminal"
)

// sdNotifier is posagentd's side of the sd_notify(3) protocol with
// systemd (build/posagentd.service, Type=notify, WatchdogSec=):
//
//   - READY=1 once the first screen is on the display (the loop has run the
//     Boot step), so `systemctl start` returns when a cashier can see the
//     terminal, not when the process exists;
//   - STATUS=<lifecycle state> whenever the state changes, so
//     `systemctl status posagentd` says unactivated/active/unbinding/tampered;
//   - STOPPING=1 when the daemon stops;
//   - WATCHDOG=1 at half the watchdog interval, and only after the event
//     loop has answered a probe: a loop stuck in one step (a hung serial
//     write, an fsync that never returns) answers nothing, the pings stop,
//     and systemd kills and restarts the agent after WatchdogSec. A
//     goroutine that pinged on a plain timer would keep a wedged terminal
//     "healthy" forever.
//
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op; a nil
// *sdNotifier is valid and does nothing, so in-process tests need none.
type sdNotifier struct {
	log      *slog.Logger
	interval time.Duration      // WATCHDOG_USEC; 0 when the watchdog is off
	probes   chan chan struct{} // watchdog → loop; the loop closes the channel it gets

	mu     sync.Mutex
	ready  bool
	status string
	stuck  bool // the last probe went unanswered (logged once per episode)

	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startSystemd reads NOTIFY_SOCKET and WATCHDOG_USEC (and WATCHDOG_PID,
// which must be ours) and starts the watchdog goroutine when systemd asks
// for pings.
func startSystemd(log *slog.Logger) *sdNotifier {
	n := &sdNotifier{
		log:    log,
		probes: make(chan chan struct{}),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	iv, err := sdnotify.SdWatchdogEnabled(false)
	if err != nil {
		// A malformed WATCHDOG_USEC: run without pings rather than not at
		// all; systemd will restart us when the interval runs out, which
		// makes the misconfiguration visible.
		log.Warn("systemd watchdog", slog.String("err", err.Error()))
	}
	n.interval = iv
	if iv > 0 {
		log.Info("systemd watchdog enabled", slog.Duration("interval", iv))
		go n.watchdog()
	} else {
		close(n.done)
	}
	return n
}

// Probes is the channel the event loop selects on; it closes every channel
// it receives, which proves to the watchdog that the loop is turning. A nil
// notifier has a nil channel, which a select never chooses.
func (n *sdNotifier) Probes() <-chan chan struct{} {
	if n == nil {
		return nil
	}
	return n.probes
}

// Running is called by the event loop each time it is about to wait for
// the next event: the first call sends READY=1 (the Boot step has shown the
// first screen by then), and any call with a new lifecycle state sends
// STATUS=<state>.
func (n *sdNotifier) Running(l terminal.Lifecycle) {
	if n == nil {
		return
	}
	st := l.String()
	n.mu.Lock()
	msg := ""
	if !n.ready {
		msg = "READY=1\n"
		n.ready = true
	}
	if st != n.status {
		msg += "STATUS=" + st
		n.status = st
	}
	n.mu.Unlock()
	if msg != "" {
		n.send(msg)
	}
}

// Stop sends STOPPING=1 and ends the watchdog goroutine. Calling it twice
// is harmless.
func (n *sdNotifier) Stop() {
	if n == nil {
		return
	}
	n.stopOnce.Do(func() {
		close(n.quit)
		<-n.done
		n.send("STOPPING=1")
	})
}

func (n *sdNotifier) send(state string) {
	if _, err := sdnotify.SdNotify(false, state); err != nil {
		n.log.Warn("systemd notify", slog.String("err", err.Error()))
	}
}

// watchdog pings every interval/2, each time only after the loop has
// answered a probe within that half interval. A late answer still counts
// for the next round; systemd's own margin is the other half.
func (n *sdNotifier) watchdog() {
	defer close(n.done)
	every := n.interval / 2
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-tick.C:
		}
		alive, quit := n.probe(every)
		if quit {
			return
		}
		n.mu.Lock()
		wasStuck := n.stuck
		n.stuck = !alive
		n.mu.Unlock()
		switch {
		case alive:
			if wasStuck {
				n.log.Info("event loop answers again: watchdog pings resumed")
			}
			n.send("WATCHDOG=1")
		case !wasStuck:
			n.log.Error("event loop does not answer: withholding the watchdog ping",
				slog.Duration("waited", every))
		}
	}
}

// probe hands the loop a fresh channel and waits, at most within, for the
// loop to take and close it.
func (n *sdNotifier) probe(within time.Duration) (alive, quit bool) {
	ack := make(chan struct{})
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	select {
	case n.probes <- ack:
	case <-deadline.C:
		return false, false
	case <-n.quit:
		return false, true
	}
	select {
	case <-ack:
		return true, false
	case <-deadline.C:
		return false, false
	case <-n.quit:
		return false, true
	}
}

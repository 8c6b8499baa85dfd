package terminal

import (
	"log/slog"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// ResultTimeout is how long a result screen (APPROVED, DECLINED, an error)
// stays before it returns to the menu it came from.
const ResultTimeout = 30 * time.Second

// ActivatedTimeout is how long ACTIVATED stays before MAIN MENU.
const ActivatedTimeout = 3 * time.Second

// LockDuration is how long the supervisor password stays locked after the
// third wrong password in a row.
const LockDuration = 5 * time.Minute

// MaxPwdFails is the number of wrong supervisor passwords in a row that
// locks it.
const MaxPwdFails = 3

// PasswordChecker verifies a typed password against a stored hash. It is
// pure (a slow KDF, no IO), so the core may call it.
type PasswordChecker func(hash, password string) bool

// State is everything the machine needs to start: the shell loads it from
// the stores at boot.
type State struct {
	Lifecycle         Lifecycle
	Serial            string
	TechPwdHash       string
	SupervisorPwdHash string
	PwdLock           PwdLock // the supervisor password's
	TechPwdLock       PwdLock // the technician password's (identity store)

	// Merchant data (active terminals).
	Merchant  Merchant
	Counters  Counters
	Journal   []Txn     // the open batch (Counters.Batch), in STAN order
	Prev      []Txn     // the closed batch, readable until the next settlement
	PrevBatch BatchNo   // 0 = none
	Reversal  *Reversal // the pending reversal, if any
	// Settling is the batch whose settlement started and did not finish:
	// the host may have closed it already, so no sale or void may go on in
	// it; the settlement resumes at boot and from the menu.
	Settling BatchNo
	// NeedSignIn: the host asked for a sign-in, or the working keys are
	// missing; the next financial message signs in first.
	NeedSignIn bool

	// Intent is the unbind in progress (identity store), if any.
	Intent *UnbindIntent
	// Update is the over-the-air update in progress (identity store), if
	// any (update.go).
	Update *UpdateIntent
	// Version is the version of the running software (not in the stores:
	// the shell sets it after Load, as WorkingKeys). A boot after an
	// update compares it with the intent's.
	Version string

	// Binding is the settlement-card binding of an active terminal.
	Binding *Binding
	// DeviceX25519Pub is the device's key-delivery public key (base64),
	// sent in activation requests.
	DeviceX25519Pub string
	// Incomplete: merchant parameters without a settlement-card binding,
	// an activation cut short by a power cut; erased at boot. Derived by
	// Resolve.
	Incomplete bool

	// Tampered: the tamper input fired and no technician activation has
	// cleared it since (identity store).
	Tampered bool
	// WorkingKeys: the secure element holds a MAK (a fact of the SE, not
	// of the stores: the shell sets it after Load). Without one the first
	// financial message signs in first.
	WorkingKeys bool
	// TIDCounters are the STAN and batch counters of every TID this
	// terminal has served, kept with the identity (never wiped): a TID
	// provisioned again continues its STAN, so the host's duplicate check
	// (answer 94) never sees a number twice (identity store).
	TIDCounters map[string]Counters // by TIDKey
	// TimeFloor is the latest trusted time the terminal has seen, at least
	// the build time (spec/remote.md "Clock trust"; identity store).
	TimeFloor time.Time
	// FailStops is the count of fail-stops in a row before this boot (not
	// in the stores: the shell keeps it where a full disk can still take
	// it, and sets it after Load, as WorkingKeys).
	FailStops int
}

// Machine is the terminal core: a deterministic state machine. It is not
// safe for concurrent use: the shell owns it from one goroutine.
type Machine struct {
	st       State
	checkPwd PasswordChecker
	now      time.Time
	lang     i18n.Lang // of the screens and receipts (WithLang)

	// Device problems the shell reported, shown on every screen's last
	// line while they last (devices.go).
	devices deviceProblems

	views []view // the screen stack; views[0] is the lifecycle's root
	shown []string
	out   []Effect

	alarm   time.Time        // when onAlarm runs (zero: none)
	onAlarm func(m *Machine) // a step waiting for its time (unbind retry)

	unbindBackoff time.Duration
	// unbindWhenIdle: an unbind was accepted while an exchange was in
	// flight; it goes on once the link is idle.
	unbindWhenIdle bool

	activation *activation      // the technician activation in progress
	wipeAfter  func(m *Machine) // what a Wiped outside an unbind goes on with

	diskKnown, diskLow bool // the last DiskFree, compared with MinFreeKiB

	// holding: the boot holds back the work it owes (storage hold, disk.go).
	holding bool
	// stableFrom: Boot, or the hold's release; the fail-stop count is
	// cleared StableAfter it (disk.go).
	stableFrom time.Time

	// clockTrusted: since this boot the shell reported the clock
	// synchronised, or the sign-in answer set it, and it reads no earlier
	// than the time floor (spec/remote.md "Clock trust").
	clockTrusted bool

	// halted: a write failed and the machine asked for a reboot; it
	// decides nothing more (fail-stop: the next boot rebuilds the state
	// from what is on disk).
	halted bool

	// updateSignIn is how long a new version may try to sign in
	// (WithUpdateSignIn); updateUntil is when this boot's window closes.
	updateSignIn time.Duration
	updateUntil  time.Time

	nextID   uint64 // of the last Request
	inflight *job   // the exchange in flight (one at a time)
	waiting  []*job // exchanges queued behind it
}

// New builds a machine from the state loaded from the stores; the
// lifecycle is worked out from what was loaded (Resolve).
func New(st State, checkPwd PasswordChecker, opts ...Option) *Machine {
	m := &Machine{st: Resolve(st), checkPwd: checkPwd}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Lifecycle returns the current lifecycle state.
func (m *Machine) Lifecycle() Lifecycle { return m.st.Lifecycle }

// Screen returns the screen currently shown.
func (m *Machine) Screen() hal.Screen { return hal.Screen{Lines: append([]string(nil), m.shown...)} }

// Step feeds one event at time now and returns the effects to execute, in
// order.
func (m *Machine) Step(now time.Time, ev Event) []Effect {
	m.now = now
	m.out = nil
	if m.halted {
		if pf, ok := ev.(PersistFailed); ok {
			// A write the machine emitted before its Reboot failed (the
			// final ack of an unbind): the shell stopped there and will
			// never reach that Reboot. Fail stop instead.
			m.failStop(pf.Err)
			return m.out
		}
		return nil // a reboot is on its way: nothing more is decided
	}
	if len(m.views) == 0 {
		switch ev := ev.(type) {
		case Boot:
		case DiskFree:
			m.onDiskFree(ev.KiB) // the boot decision needs it
			return m.out
		default:
			return nil // nothing happens before Boot
		}
	}
	switch ev := ev.(type) {
	case Boot:
		m.stableFrom = now
		m.enter(m.st.Lifecycle, "boot")
		m.boot()
	case AcquirerReply:
		m.onAcquirerReply(ev)
	case CommandReceived:
		m.onCommand(ev.Cmd)
	case Wiped:
		if f := m.wipeAfter; f != nil {
			m.wipeAfter = nil
			if ev.Err != nil {
				m.log(slog.LevelError, "wipe failed", slog.String("err", ev.Err.Error()))
			}
			f(m)
			break
		}
		m.onWiped(ev.Err)
	case KeyPressed:
		if len(m.views) > 0 {
			m.top().key(m, ev.Key)
		}
	case Tick:
		if !m.alarm.IsZero() && !now.Before(m.alarm) {
			f := m.onAlarm
			m.alarm, m.onAlarm = time.Time{}, nil
			f(m)
		}
		if d, ok := m.top().(deadliner); ok {
			if t := d.deadline(); !t.IsZero() && !now.Before(t) {
				d.expire(m)
			}
		}
		m.forgiveFailStops()
	case CardSwiped:
		if c, ok := m.top().(cardTaker); ok {
			c.card(m, ev.Card, ev.Err)
		}
	case PersistFailed:
		m.failStop(ev.Err)
		return m.out
	case TamperDetected:
		m.onTamper()
	case Provisioned:
		m.onProvisioned(ev)
	case SupervisorPwdStored:
		m.onSupervisorPwdStored(ev)
	case DiskFree:
		m.onDiskFree(ev.KiB)
	case ClockSynced:
		m.onClockSynced()
	case PrinterStatus:
		m.devices.paperOut, m.devices.printerOffline, m.devices.printerUnreadable = ev.PaperOut, ev.Offline, ev.Unreadable
	case KeypadStatus:
		m.devices.keypadMissing = ev.Missing
	case DisplayStatus:
		m.devices.displayFault = ev.Fault
	case UpdateDownloaded:
		m.onUpdateDownloaded(ev)
	case UpdateInstalled:
		m.onUpdateInstalled(ev)
	case UpdateMarked:
		m.onUpdateMarked(ev)
	}
	m.updateWhenIdle()
	m.checkClock()
	m.render()
	return m.out
}

// failStop is the answer to a write that failed. The shell executed
// nothing after it, so nothing left that is not on disk; the memory of
// this machine may now be ahead of the disk, so it is not trusted any
// more: a clear screen, a log line, and a reboot through the HAL, after
// which the state is rebuilt from the stores. Any exchange in flight is
// abandoned with the process: its reversal image is on disk, and the
// next boot sends it.
func (m *Machine) failStop(err error) {
	m.log(slog.LevelError, "write failed: rebooting to rebuild the state from disk", slog.String("err", err.Error()))
	m.inflight, m.waiting = nil, nil
	m.alarm, m.onAlarm = time.Time{}, nil
	// Counted, so that a disk that stays full does not make every boot
	// fail the same way (the storage hold, disk.go).
	m.emit(PutFailStops{N: m.st.FailStops + 1})
	m.rebootWith(m.t(i18n.Error), m.t(i18n.StorageFault), "", m.t(i18n.Rebooting))
}

// rebootWith draws its last screen, then asks for the reboot: the shell
// stops at Reboot, so the screen must come first.
func (m *Machine) rebootWith(lines ...string) {
	m.views = []view{&infoView{lines: lines}}
	m.render()
	m.halted = true
	m.emit(Reboot{})
}

func (m *Machine) emit(e ...Effect) { m.out = append(m.out, e...) }

func (m *Machine) log(level slog.Level, msg string, attrs ...slog.Attr) {
	m.emit(Log{Level: level, Msg: msg, Attrs: attrs})
}

// enter is the one place a lifecycle state is entered: it resets the
// screen stack to the state's root and tells the display, the LED, the
// log and HQ together.
func (m *Machine) enter(l Lifecycle, why string) {
	prev := m.st.Lifecycle
	m.st.Lifecycle = l
	m.views = []view{m.rootView()}
	m.shown = nil // force a redraw
	led := hal.LEDOff
	switch l {
	case Active:
		led = hal.LEDGreen
	case Tampered:
		led = hal.LEDRed
	case Unbinding:
		led = hal.LEDBlink
	}
	m.emit(
		Log{Level: slog.LevelInfo, Msg: "lifecycle", Attrs: []slog.Attr{
			slog.String("from", prev.String()), slog.String("to", l.String()), slog.String("why", why)}},
		SetLED{State: led},
		PublishStatus{Status: m.status()},
	)
}

func (m *Machine) status() Status {
	s := Status{State: m.st.Lifecycle, ClockTrusted: m.clockTrusted, PendingReversal: m.st.Reversal != nil}
	if m.st.Lifecycle == Active || m.st.Lifecycle == Unbinding {
		s.TID = m.st.Merchant.TID
		s.BatchNo = m.st.Counters.Batch
		for _, t := range m.st.Journal {
			if t.Status != Approved {
				continue
			}
			s.BatchCount++
			// The net the settlement would report: a void takes its
			// original's amount off.
			if t.Type == Void {
				s.BatchAmount -= t.Amount
			} else {
				s.BatchAmount += t.Amount
			}
		}
	}
	return s
}

// boot does what must happen before anything else, unless the storage
// hold keeps it back (disk.go).
func (m *Machine) boot() {
	if mustHold(m.st.FailStops, m.diskLow, m.owesWork()) {
		m.hold()
		return
	}
	m.resumeOwed()
}

// resumeOwed does the work a boot owes: an interrupted activation erased,
// an unbind continued, a pending reversal sent first (acquirer.md
// §Terminal rules) with the screen saying so, a settlement resumed.
func (m *Machine) resumeOwed() {
	defer m.resumeUpdate() // an update's boot step goes behind what is owed (update.go)
	if m.st.Incomplete {
		// An activation cut short: erase what it stored.
		m.log(slog.LevelWarn, "incomplete activation found at boot: erasing it")
		m.wipeAfter = func(m *Machine) { m.st.Merchant, m.st.Incomplete = Merchant{}, false }
		m.emit(Wipe{})
		return
	}
	if m.st.Lifecycle == Unbinding {
		if m.st.Intent == nil {
			m.enter(Active, "unbinding without an intent")
			return
		}
		m.unbindStep()
		return
	}
	if m.st.Lifecycle != Active {
		return
	}
	if m.st.Reversal == nil {
		m.resumeSettlement()
		return
	}
	m.push(&infoView{lines: []string{m.t(i18n.Reversal), m.label(i18n.VoucherLabel, m.st.Reversal.Txn.STAN.String()), "", m.t(i18n.Processing)}})
	m.sendReversal(func(m *Machine, ok bool) {
		m.popTo(1)
		if !ok {
			m.showResult(m.t(i18n.ReversalPending), m.t(i18n.HostUnreachable), m.t(i18n.RetryLater))
			return
		}
		m.resumeSettlement()
	})
}

// resumeSettlement finishes a settlement a power cut interrupted.
func (m *Machine) resumeSettlement() {
	if m.st.Lifecycle != Active || m.st.Settling == 0 {
		return
	}
	m.push(&infoView{lines: []string{m.t(i18n.Settlement), m.label(i18n.BatchLabel, m.st.Counters.Batch.String()), m.t(i18n.Resuming), m.t(i18n.Processing)}})
	m.settle(func(m *Machine, outcome string, f *failure) {
		if f != nil {
			m.showResult(append([]string{m.t(i18n.SettleFailed)}, m.why(f)...)...)
			return
		}
		// Back to work: the settlement receipt says what happened.
		m.popTo(1)
	})
}

func (m *Machine) rootView() view {
	if m.holding && m.st.Lifecycle != Tampered {
		return holdView{}
	}
	switch m.st.Lifecycle {
	case Active:
		return m.mainMenu()
	case Tampered:
		return m.tamperedView()
	case Unbinding:
		return &infoView{lines: []string{m.t(i18n.Unbinding), m.t(i18n.PleaseWait)}}
	}
	return m.notActivatedView()
}

// render emits a Show when the top view's screen differs from what is on
// the display.
func (m *Machine) render() {
	if len(m.views) == 0 {
		return
	}
	s := fit(m.devices.onScreen(m, m.top().render(m)))
	if equalLines(s.Lines, m.shown) {
		return
	}
	m.shown = s.Lines
	m.emit(Show{Screen: s})
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) || a == nil || b == nil {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (m *Machine) top() view { return m.views[len(m.views)-1] }

func (m *Machine) push(v view) { m.views = append(m.views, v) }

// pop goes back one level; the root is never popped.
func (m *Machine) pop() {
	if len(m.views) > 1 {
		m.views = m.views[:len(m.views)-1]
	}
}

// popTo returns to the view at depth n (0 = root).
func (m *Machine) popTo(n int) {
	if n < 1 {
		n = 1
	}
	if n < len(m.views) {
		m.views = m.views[:n]
	}
}

// replace swaps the top view (one step of a flow for the next).
func (m *Machine) replace(v view) { m.views[len(m.views)-1] = v }

// showResult replaces the flow's waiting screen with a result that returns
// to the menu the flow started from.
func (m *Machine) showResult(l ...string) {
	back := m.flowBase()
	m.popTo(back)
	m.push(&resultView{lines: l, back: back, until: m.now.Add(ResultTimeout)})
}

// flowBase is the depth of the menu the current flow started from: the
// topmost menu on the stack.
func (m *Machine) flowBase() int {
	for i := len(m.views) - 1; i >= 0; i-- {
		if _, ok := m.views[i].(*menuView); ok {
			return i + 1
		}
	}
	return 1
}

// cancelFlow returns to the menu that started the flow, sending nothing.
func (m *Machine) cancelFlow() { m.popTo(m.flowBase()) }

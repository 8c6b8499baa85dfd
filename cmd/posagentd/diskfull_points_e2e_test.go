package main

// The disk-full test at every write point (issue 10): a sale, a void, a
// settlement with batch upload and a remote unbind (settle), each with
// data_dir on a small tmpfs, and each durable write of the flow failed in
// turn with ENOSPC. A full disk cannot be made to fail one chosen commit
// (bbolt reuses the pages it freed, so most commits on a full tmpfs still
// succeed: README, "Disk full"), so the daemon under test is the
// fault-injection build (tag faultinject), which names every store commit
// by its write point and fails the one the test names. Everything after
// that failure runs on a genuinely full disk: the test fills the tmpfs,
// restarts the daemon as its supervisor would, checks that it does not
// reboot in a loop and waits on a clear screen, then frees the space and
// checks that the terminal ends consistent:
//
//   - no wedge: the daemon fails stop or comes to rest, never PROCESSING
//     for ever;
//   - nothing sent that is not stored: every request the host holds has
//     its journal record and STAN on disk, every ack HQ holds its state;
//   - once space returns: the host's ledger and the journal agree, and a
//     settlement balances; an unbind ends with one consistent final ack.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/storage/termstore"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

var (
	faultBinOnce sync.Once
	faultBin     string
	faultBinErr  error
)

// faultDaemon builds the fault-injection posagentd once per test binary.
func faultDaemon(t *testing.T) string {
	t.Helper()
	buildBinaries(t)
	faultBinOnce.Do(func() {
		faultBin = filepath.Join(binDir, "posagentd-faultinject")
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "faultinject", "-o", faultBin, "./cmd/posagentd")
		cmd.Dir = moduleRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			faultBinErr = fmt.Errorf("go build -tags faultinject: %v\n%s", err, out)
		}
	})
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
	return faultBin
}

// Words of the screens the test waits for.
const (
	scrFault = "STORAGE FAULT" // the fail-stop (and the hold of a failing store)
	scrFull  = "STORAGE FULL"  // the storage hold on a full disk
)

// writePoints drives one terminal through one flow, once per write point.
type writePoints struct {
	t     *testing.T
	h     *Term
	mnt   string // the tmpfs holding data_dir
	trace string // the commit trace (outside the tmpfs)
	rest  string // the screen of a terminal at rest: MAIN MENU

	// The unbind's HQ side (nil for the cashier flows).
	hq     *hqSide
	serial string
	mid    string
}

// newWritePoints makes a terminal whose data_dir is on a 4 MiB tmpfs and
// whose daemon is the fault-injection build.
func newWritePoints(t *testing.T, h *Term) *writePoints {
	t.Helper()
	h.WaitScreen("MAIN MENU", remoteWait)
	h.Stop()
	w := &writePoints{t: t, h: h, trace: filepath.Join(t.TempDir(), "commits.trace"), rest: "MAIN MENU"}
	w.mnt = moveToTmpfs(t, h, "4m")
	h.Bin = faultDaemon(t)
	w.signIn()
	return w
}

// signIn signs the stopped terminal in, in a run of its own: every run of
// a flow, the traced one included, then starts with working keys and
// writes the same things.
func (w *writePoints) signIn() {
	w.t.Helper()
	w.start()
	w.h.Keys("4")
	w.h.WaitScreen("SIGNED IN", remoteWait)
	w.h.Keys("\r")
	w.h.WaitScreen("MAIN MENU", remoteWait)
	w.h.Stop()
}

// start starts the daemon with env and waits for the rest screen.
func (w *writePoints) start(env ...string) {
	w.t.Helper()
	w.h.Env = env
	w.h.Start()
	w.h.WaitScreen(w.rest, remoteWait)
}

func readTrace(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// quiet waits until the trace has not grown for a while: the writes that
// follow a screen (the time floor at boot, the outbox after a PUBACK)
// are in it.
func (w *writePoints) quiet() {
	size, since := int64(-1), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		fi, err := os.Stat(w.trace)
		n := int64(0)
		if err == nil {
			n = fi.Size()
		}
		if n != size {
			size, since = n, time.Now()
		} else if time.Since(since) > 500*time.Millisecond {
			return
		}
	}
}

// points runs prepare then flow once with the trace on, and returns the
// write points of flow, in order ("merchant.db/update merchant store#5":
// numbered from the start of the process, as the fault build counts).
func (w *writePoints) points(prepare func(), flow func() bool) (pts, traced []string) {
	w.t.Helper()
	os.Remove(w.trace)
	w.start("POSAGENT_TEST_COMMIT_TRACE=" + w.trace)
	prepare()
	w.quiet()
	mark := len(readTrace(w.t, w.trace))
	if !flow() {
		w.t.Fatalf("the flow did not run to its end without a fault; last screens:\n%s", w.h.scr.Tail(6))
	}
	w.quiet()
	traced = readTrace(w.t, w.trace)
	if w.h.running() {
		w.h.Stop()
	}
	return traced[mark:], traced
}

// await waits for one of words, a fault screen or the daemon's exit; it
// returns the word, or "" for a fault or an exit.
func (w *writePoints) await(words ...string) string {
	w.t.Helper()
	all := append([]string{scrFault, scrFull}, words...)
	s, ok := w.h.waitAny(all, remoteWait)
	if !ok {
		if !w.h.running() {
			return ""
		}
		w.t.Fatalf("waiting for %q: the terminal wedged; last screens:\n%s\nlog tail:\n%s", words, w.h.scr.Tail(6), tail(w.h.lastLog(), 3000))
	}
	for _, x := range all {
		if strings.Contains(s, x) {
			if x == scrFault || x == scrFull {
				return ""
			}
			return x
		}
	}
	return ""
}

// atRest waits until the daemon has exited or shows a screen that is not
// waiting on anything (no PROCESSING, no step of an unbind): no wedge.
func (w *writePoints) atRest(words ...string) {
	w.t.Helper()
	deadline := time.Now().Add(remoteWait)
	for time.Now().Before(deadline) {
		if !w.h.running() {
			return
		}
		if _, ok := w.h.waitAny(append([]string{scrFault}, words...), 200*time.Millisecond); ok {
			return
		}
	}
	w.t.Fatalf("neither at rest (%q) nor stopped after %v: a wedge; last screens:\n%s\nlog tail:\n%s", words, remoteWait, w.h.scr.Tail(6), tail(w.h.lastLog(), 3000))
}

// stop stops a daemon that is still running (a write whose failure was
// not fatal) or collects one that failed stop (exit status 3).
func (w *writePoints) stop() (failStopped bool) {
	w.t.Helper()
	if w.h.running() && strings.Contains(w.h.scr.Tail(1), scrFault) {
		w.waitExit()
	}
	if !w.h.running() {
		if w.h.exitSt != exitReboot {
			w.t.Fatalf("posagentd exit status %d, want %d (reboot); log tail:\n%s", w.h.exitSt, exitReboot, tail(w.h.lastLog(), 3000))
		}
		return true
	}
	w.h.Stop()
	return false
}

// stored is what the stopped daemon's stores hold, through the store
// adapter the daemon uses.
func (w *writePoints) stored() terminal.State {
	w.t.Helper()
	_, _, sePath := storage.Paths(w.h.DataDir)
	se, err := sesim.Open(sePath)
	if err != nil {
		w.t.Fatalf("secure element: %v", err)
	}
	s, err := termstore.Open(w.h.DataDir, se)
	if err != nil {
		w.t.Fatalf("open the stores: %v", err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		w.t.Fatalf("load the stores: %v", err)
	}
	return st
}

// checkStoredBeforeSent: nothing reached the host that is not on disk.
// Every sale or void the host holds in a batch the terminal still keeps
// has its journal record (same type and amount); the STAN on disk is at
// least every STAN the host saw; a settlement the host saw for the open
// batch has the terminal's settlement marker.
func (w *writePoints) checkStoredBeforeSent(st terminal.State, point string) {
	w.t.Helper()
	ht := w.h.Ledger().Terminals[w.h.TID]
	if ht == nil {
		return
	}
	counters := st.Counters
	if st.Merchant.TID == "" { // wiped: the TID's counters stay with the identity
		counters = st.TIDCounters[terminal.TIDKey(st.Serial, w.h.TID)]
	}
	held := map[string][]terminal.Txn{}
	if st.Merchant.TID != "" {
		held[st.Counters.Batch.String()] = st.Journal
		if st.PrevBatch != 0 {
			held[st.PrevBatch.String()] = st.Prev
		}
	}
	maxSTAN := ""
	for _, b := range ht.Batches {
		for _, x := range b.Transactions {
			maxSTAN = max(maxSTAN, x.STAN)
		}
		if b.Settlement != nil {
			maxSTAN = max(maxSTAN, b.Settlement.STAN)
			if st.Merchant.TID != "" && b.Number == st.Counters.Batch.String() && st.Settling != st.Counters.Batch {
				w.t.Errorf("%s: the host has a settlement of open batch %s, the terminal no settlement marker", point, b.Number)
			}
		}
		txns, ok := held[b.Number]
		if !ok {
			continue
		}
		for _, x := range b.Transactions {
			found := false
			for _, y := range txns {
				if y.STAN.String() == x.STAN {
					found = true
					if hostType(y.Type) != x.Type || int64(y.Amount) != x.Amount {
						w.t.Errorf("%s: batch %s STAN %s: host %s %d, journal %s %d", point, b.Number, x.STAN, x.Type, x.Amount, y.Type, y.Amount)
					}
				}
			}
			if !found {
				w.t.Errorf("%s: batch %s STAN %s (%s %d, %s) reached the host with no journal record on disk", point, b.Number, x.STAN, x.Type, x.Amount, x.State)
			}
		}
	}
	if maxSTAN != "" && counters.STAN.String() < maxSTAN {
		w.t.Errorf("%s: the host saw STAN %s, the STAN on disk is %s", point, maxSTAN, counters.STAN)
	}
}

// owes reports whether a boot from st has work to do that writes.
func owes(st terminal.State) bool {
	return st.Reversal != nil || st.Settling != 0 || st.Intent != nil
}

// onFullDisk fills the tmpfs and restarts the daemon as its supervisor
// would (again after each reboot): at most MaxFailStops reboots, then it
// must stay up on a clear screen (the storage hold when the boot owes work
// after a fail-stop) and send nothing to the host while it holds but the
// pending reversal, once.
func (w *writePoints) onFullDisk(owed bool, point string) {
	w.t.Helper()
	fill(w.t, w.mnt, "ballast", 0)
	if kib := freeKiB(w.t, w.mnt); kib != 0 {
		w.t.Fatalf("%s: %d KiB free after the ballast", point, kib)
	}
	w.h.Env = nil
	reversalsBefore := w.hostReversals()
	w.h.Start()
	if owed {
		// The boot after a fail-stop that owes work, on a disk still full.
		if s, _ := w.h.WaitAny(remoteWait, scrFull, scrFault, w.rest, "NOT ACTIVATED", "REVERSAL", "SETTLEMENT", "UNBINDING"); !strings.Contains(s, scrFull) {
			w.t.Errorf("%s: the boot on a full disk owes work after a fail-stop: %q, want %s", point, s, scrFull)
		}
	}
	// Supervise: a reboot starts the daemon again; it must come to stay
	// (longer than the disk meter's period and the boot's own work: a loop
	// reboots within that) after at most MaxFailStops reboots.
	reboots, up := 0, time.Now()
	for time.Since(up) < 2500*time.Millisecond {
		if w.h.running() {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if w.h.exitSt != exitReboot {
			w.t.Fatalf("%s: exit status %d on the full disk; log tail:\n%s", point, w.h.exitSt, tail(w.h.lastLog(), 3000))
		}
		if reboots++; reboots > terminal.MaxFailStops {
			w.t.Fatalf("%s: %d reboots in a row on a full disk: a reboot loop; log tail:\n%s", point, reboots, tail(w.h.Logs(), 5000))
		}
		w.h.Start()
		up = time.Now()
	}
	s := w.h.scr.Tail(1)
	if strings.Contains(s, "PROCESSING") {
		w.t.Errorf("%s: on the full disk: %s", point, s)
	}
	if strings.Contains(s, scrFull) {
		if strings.Contains(s, "REVERSAL WAITING") {
			// The pending reversal leaves even from the hold (it needs no
			// write): the cardholder's funds do not wait for the disk.
			for deadline := time.Now().Add(remoteWait); w.hostReversals() == reversalsBefore; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					w.t.Fatalf("%s: the hold did not send the pending reversal", point)
				}
			}
		}
		ledger, _ := json.Marshal(w.h.Ledger().Terminals[w.h.TID])
		time.Sleep(1500 * time.Millisecond)
		if now, _ := json.Marshal(w.h.Ledger().Terminals[w.h.TID]); string(now) != string(ledger) {
			w.t.Errorf("%s: the host heard from the terminal while it held on a full disk", point)
		}
	}
	w.t.Logf("%s: on the full disk after %d reboot(s): %s", point, reboots, strings.TrimSpace(s))
}

// hostReversals counts the 0400s the host received from the terminal.
func (w *writePoints) hostReversals() int {
	n := 0
	if ht := w.h.Ledger().Terminals[w.h.TID]; ht != nil {
		for _, b := range ht.Batches {
			n += len(b.Reversals)
		}
	}
	return n
}

func (w *writePoints) waitExit() {
	w.t.Helper()
	select {
	case <-w.h.done:
	case <-time.After(remoteWait):
		w.t.Fatalf("%s shown, no exit; log tail:\n%s", scrFault, tail(w.h.lastLog(), 3000))
	}
}

// spaceReturns removes the ballast and waits until the terminal has done
// what it owed and rests (restarting it if it still reboots).
func (w *writePoints) spaceReturns(restWords ...string) {
	w.t.Helper()
	if err := os.Remove(filepath.Join(w.mnt, "ballast")); err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(2 * remoteWait)
	for time.Now().Before(deadline) {
		if !w.h.running() {
			w.h.Start()
		}
		if s, ok := w.h.waitAny(restWords, 500*time.Millisecond); ok && !strings.Contains(s, scrFull) {
			return
		}
	}
	w.t.Fatalf("once space returned the terminal did not come to rest (%q); last screens:\n%s\nlog tail:\n%s", restWords, w.h.scr.Tail(6), tail(w.h.lastLog(), 3000))
}

// settleBalanced settles the open batch with no host fault and requires a
// balanced settlement whose totals are the host's.
func (w *writePoints) settleBalanced(point string) {
	w.t.Helper()
	h := w.h
	h.SetFaults(hostsim.Faults{})
	h.WaitScreen("MAIN MENU", remoteWait)
	h.Keys("3")
	s := h.WaitScreen("SETTLE BATCH?", remoteWait)
	batch := ""
	if i := strings.Index(s, "BATCH "); i >= 0 && len(s) >= i+12 {
		batch = s[i+6 : i+12]
	}
	h.Keys("\r")
	s, _ = h.WaitAny(remoteWait, "SETTLED", "SETTLE FAILED")
	if !strings.Contains(s, "SETTLED") || strings.Contains(s, "UPLOADED") {
		w.t.Errorf("%s: settlement once space returned: %q, want SETTLED (balanced)", point, s)
	}
	h.Keys("\r")
	h.WaitScreen("MAIN MENU", remoteWait)
	if b := h.Ledger().Batch(h.TID, batch); b != nil && len(b.Transactions) > 0 &&
		(b.Settlement == nil || b.Settlement.Terminal != b.HostTotals() || b.Reconciled != hostsim.ReconciledBalanced) {
		w.t.Errorf("%s: host batch %s after the settlement: %+v", point, batch, b)
	}
}

// cashier runs a cashier flow at every write point.
func (w *writePoints) cashier(name string, prepare func(), flow func() bool) {
	t := w.t
	pts, traced := w.points(prepare, flow)
	t.Logf("%s: %d write points: %q", name, len(pts), pts)
	if len(pts) == 0 {
		t.Fatalf("%s: no write point recorded", name)
	}
	if n := checkAgreement(t, readTerminalStore(t, w.h.DataDir), w.h.HostTerminal()); n == 0 {
		t.Fatalf("%s: the traced run left no approved transaction to check", name)
	}
	w.start()
	w.settleBalanced(name + " (traced run)")
	w.h.Stop()
	w.each(pts, func(t *testing.T, pt string) {
		w.start("POSAGENT_TEST_COMMIT_TRACE="+w.trace, "POSAGENT_TEST_FAIL_COMMIT="+pt)
		prepare()
		completed := flow()
		w.atRest(w.rest)
		failStopped := w.stop()
		w.sameWrites(traced, pt)
		t.Logf("%s: flow completed %v, fail-stopped %v", pt, completed, failStopped)
		st := w.stored()
		w.checkStoredBeforeSent(st, pt)
		w.onFullDisk(failStopped && owes(st), pt)
		w.spaceReturns(w.rest)
		w.h.Stop()
		st = w.stored()
		if st.Reversal != nil || st.Settling != 0 {
			t.Errorf("%s: still owed once space returned: reversal %v, settling %s", pt, st.Reversal != nil, st.Settling)
		}
		checkAgreement(t, readTerminalStore(t, w.h.DataDir), w.h.HostTerminal())
		w.start()
		w.settleBalanced(pt)
		w.h.Stop()
		if t.Failed() {
			t.Fatalf("%s failed; log tail:\n%s", pt, tail(w.h.Logs(), 6000))
		}
	})
}

// each runs fn for every write point, as a subtest named by the point
// (-run 'TestDiskFullAtEveryWritePointSale/merchant.db:update'); a point
// that fails stops the test there: the next ones start from the state it
// leaves.
func (w *writePoints) each(pts []string, fn func(t *testing.T, pt string)) {
	parent := w.t
	for _, pt := range firstOfAsync(pts) {
		ok := parent.Run(strings.ReplaceAll(pt, "/", ":"), func(t *testing.T) {
			os.Remove(w.trace) // this run's writes only
			w.t, w.h.t = t, t
			if w.hq != nil {
				w.hq.t = t
			}
			defer func() {
				w.t, w.h.t = parent, parent
				if w.hq != nil {
					w.hq.t = parent
				}
			}()
			fn(t, pt)
		})
		if !ok {
			parent.FailNow()
		}
	}
}

// asyncWriters are the writers on the MQTT side's goroutines (a command's
// arrival, the outbox after a PUBACK): the order of their writes against
// the event loop's is the network's.
var asyncWriters = []string{" by main.(*remoteLink).store", " by main.(*remoteLink).delivered"}

// isAsync reports whether a write point is one of the MQTT side's.
func isAsync(point string) bool {
	name, _, _ := strings.Cut(point, "#")
	return slices.ContainsFunc(asyncWriters, func(w string) bool { return strings.HasSuffix(name, w) })
}

// firstOfAsync keeps the event loop's write points and the first of each
// MQTT-side writer: how many outbox deliveries an unbind makes depends on
// how the PUBACKs fall into batches, so a later one may not exist in
// another run; the first always does.
func firstOfAsync(pts []string) []string {
	var out []string
	for _, p := range pts {
		if !isAsync(p) || strings.HasSuffix(p, "#1") {
			out = append(out, p)
		}
	}
	return out
}

// loopWrites are the trace's write points of the event loop, up to and
// including point.
func loopWrites(trace []string, point string) []string {
	var out []string
	for _, l := range trace {
		l, _, _ = strings.Cut(l, "\t")
		if l != point && isAsync(l) {
			continue
		}
		out = append(out, l)
		if l == point {
			break
		}
	}
	return out
}

// sameWrites checks that the run failed at point, after the very writes
// the traced run made before it: the point is the same write of the
// same flow, not merely one with the same number.
func (w *writePoints) sameWrites(traced []string, point string) {
	w.t.Helper()
	got := readTrace(w.t, w.trace)
	if !slices.Contains(got, point+"\tENOSPC") {
		w.t.Fatalf("%s: the write point was not reached; this run's writes:\n%s", point, strings.Join(got, "\n"))
	}
	want, have := loopWrites(traced, point), loopWrites(got, point)
	if isAsync(point) {
		// An MQTT-side write waits on the broker's PUBACK, not on the
		// loop: the loop may have gone on further before it this time.
		// The loop's writes before it in the traced run come first here
		// too.
		if len(have) < len(want) || !slices.Equal(want[:len(want)-1], have[:len(want)-1]) {
			w.t.Fatalf("%s: the loop's writes before it are not those of the traced run:\ntraced: %q\nthis:   %q", point, want, have)
		}
		return
	}
	if !slices.Equal(want, have) {
		w.t.Fatalf("%s: the writes before it differ from the traced run:\ntraced: %q\nthis:   %q", point, want, have)
	}
}

// sale is MAIN MENU 1 → approved, back to MAIN MENU; false when a fault
// stopped it.
func (w *writePoints) sale(fen int64) bool {
	h := w.h
	h.Keys("1")
	if w.await("AMOUNT") == "" {
		return false
	}
	h.Keys(fmt.Sprintf("%d\r", fen))
	if w.await("SWIPE CARD") == "" {
		return false
	}
	h.Swipe(track2A)
	switch w.await("APPROVED", "DECLINED", "ERROR") {
	case "":
		return false
	case "APPROVED":
	default:
		w.t.Fatalf("sale of %d: %s", fen, h.scr.Tail(1))
	}
	h.Keys("\r")
	return w.await("MAIN MENU") != ""
}

// mustSale is a sale that must be approved (a flow's preparation).
func (w *writePoints) mustSale(fen int64) string {
	w.t.Helper()
	s := w.h.Sale(fen, track2A)
	if !strings.Contains(s, "APPROVED") {
		w.t.Fatalf("sale of %d: %q", fen, s)
	}
	v := voucherOf(w.t, s)
	w.h.Keys("\r")
	w.h.WaitScreen("MAIN MENU", remoteWait)
	return v
}

func TestDiskFullAtEveryWritePointSale(t *testing.T) {
	t.Parallel()
	sim := startAcqSim(t)
	w := newWritePoints(t, NewTerm(t, sim, TermOptions{Timeout: "3s"}))
	w.cashier("sale", func() {}, func() bool { return w.sale(1200) })
}

func TestDiskFullAtEveryWritePointVoid(t *testing.T) {
	t.Parallel()
	sim := startAcqSim(t)
	w := newWritePoints(t, NewTerm(t, sim, TermOptions{Timeout: "3s", TID: "12345679"}))
	var voucher string
	w.cashier("void", func() { voucher = w.mustSale(2300) }, func() bool {
		h := w.h
		h.Keys("2")
		if w.await("TRANSACTION MGMT") == "" {
			return false
		}
		h.Keys("1")
		if w.await("SUPERVISOR PWD") == "" {
			return false
		}
		h.Keys("123456\r")
		if w.await("VOID BY") == "" {
			return false
		}
		h.Keys("1")
		if w.await("VOUCHER NO") == "" {
			return false
		}
		h.Keys(voucher + "\r")
		if w.await("VOID?") == "" {
			return false
		}
		h.Keys("\r")
		switch w.await("APPROVED", "DECLINED", "ERROR") {
		case "":
			return false
		case "APPROVED":
		default:
			w.t.Fatalf("void of %s: %s", voucher, h.scr.Tail(1))
		}
		h.Keys("\r")
		if w.await("TRANSACTION MGMT") == "" {
			return false
		}
		h.Keys("x")
		return w.await("MAIN MENU") != ""
	})
}

func TestDiskFullAtEveryWritePointSettlement(t *testing.T) {
	t.Parallel()
	sim := startAcqSim(t)
	w := newWritePoints(t, NewTerm(t, sim, TermOptions{Timeout: "3s", TID: "12345680"}))
	w.cashier("settlement", func() {
		w.mustSale(3100)
		w.mustSale(3200)
		// The host reports a mismatch once: the settlement uploads the batch.
		w.h.SetFaults(hostsim.Faults{NotBalanced: true, On: []string{"0500"}, Count: 1})
	}, func() bool {
		h := w.h
		h.Keys("3")
		if w.await("SETTLE BATCH?") == "" {
			return false
		}
		h.Keys("\r")
		switch w.await("SETTLED UPLOADED", "SETTLED", "SETTLE FAILED") {
		case "":
			return false
		case "SETTLED UPLOADED":
		default:
			w.t.Fatalf("settlement: %s, want SETTLED UPLOADED", h.scr.Tail(1))
		}
		h.Keys("\r")
		return w.await("MAIN MENU") != ""
	})
}

// TestDiskFullAtEveryWritePointUnbind: a remote unbind (settle) of a
// terminal with an approved sale, each of its writes failed in turn: the
// inbox, the accepted ack with the intent, the settlement's, the intent's
// stages, the wipe's fresh store, the final ack, the unbound event, the
// outbox. Each run ends unactivated with one consistent succeeded ack and
// the batch settled at the host.
func TestDiskFullAtEveryWritePointUnbind(t *testing.T) {
	t.Parallel()
	broker := brokerForTerms(t, mosquittotest.Options{})
	sim := startAcqSim(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	host := &remoteHost{acqSim: sim, keys: &keyRecorder{}}
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: "PA-FULL-0001", TID: "71000020", Broker: broker.URL(), Timeout: "3s"})
	w := newWritePoints(t, r.Term)
	w.hq, w.serial, w.mid = hq, r.Serial, r.MID
	tmk, err := hostsim.ParseTMK(hostsim.DefaultTMK)
	if err != nil {
		t.Fatal(err)
	}
	secrets := func() map[string][]byte {
		return map[string][]byte{"TMK": tmk, "TID " + r.TID: []byte(r.TID), "MID " + r.MID: []byte(r.MID)}
	}

	var env []byte
	var cmdID string
	sales := 0
	prepare := func() {
		sales++
		w.mustSale(int64(4000 + 100*sales))
		cmdID = fmt.Sprintf("unbind-full-%d", time.Now().UnixNano())
		env = hq.seal(hq.command(r.Serial, remote.TypeUnbind, cmdID, remote.UnbindArgs{Reason: "disk-full test", Unsettled: remote.UnsettledSettle}, time.Hour))
	}
	// flow publishes the unbind and waits for the daemon to reboot (its
	// last screen UNBOUND) or to fail stop.
	flow := func() bool {
		hq.publish(r.Serial, env)
		start := time.Now()
		for w.h.running() && time.Since(start) < remoteWait {
			if time.Since(start) > 3*time.Second && len(hq.acksOf(cmdID)) == 0 {
				break // not taken in (its inbox write failed: no PUBACK)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if w.h.running() {
			return false // a write whose failure is not fatal (the inbox: no PUBACK)
		}
		return strings.Contains(w.h.scr.Tail(1), "UNBOUND")
	}
	// unbound checks a finished unbind and makes the terminal active again.
	unbound := func(t *testing.T, point string) {
		t.Helper()
		var final *hqAck
		hq.waitFor("succeeded ack of "+cmdID, remoteWait, func() bool {
			for _, a := range hq.acksOf(cmdID) {
				if a.Ack.State == remote.AckSucceeded {
					return true
				}
			}
			return false
		})
		for _, a := range hq.acksOf(cmdID) {
			if !a.Verified {
				t.Errorf("%s: unverified ack %+v", point, a.Ack)
			}
			switch a.Ack.State {
			case remote.AckAccepted, remote.AckInProgress:
			case remote.AckSucceeded:
				if final != nil && string(final.Ack.Result) != string(a.Ack.Result) {
					t.Errorf("%s: two different final results:\n%s\n%s", point, final.Ack.Result, a.Ack.Result)
				}
				a := a
				final = &a
			default:
				t.Errorf("%s: ack %s %s contradicts the succeeded one", point, a.Ack.State, a.Ack.Reason)
			}
		}
		for _, b := range w.h.HostTerminal().Batches {
			if len(b.Transactions) > 0 && (!b.Closed || b.Settlement == nil || b.Settlement.Terminal != b.HostTotals()) {
				t.Errorf("%s: host batch %s: closed %v, settlement %+v, host totals %+v: want settled and balanced", point, b.Number, b.Closed, b.Settlement, b.HostTotals())
			}
		}
		assertWiped(t, w.h.DataDir, secrets())
		// Active again and signed in, as the traced run started.
		r.provision()
		w.signIn()
	}

	w.rest = "MAIN MENU"
	pts, traced := w.points(prepare, flow)
	t.Logf("unbind: %d write points: %q", len(pts), pts)
	// The traced unbind ran to its end: it reboots to NOT ACTIVATED.
	w.h.Env = nil
	w.h.Start()
	w.h.WaitScreen("NOT ACTIVATED", remoteWait)
	w.h.Stop()
	unbound(t, "traced run")

	w.each(pts, func(t *testing.T, pt string) {
		w.start("POSAGENT_TEST_COMMIT_TRACE="+w.trace, "POSAGENT_TEST_FAIL_COMMIT="+pt)
		prepare()
		completed := flow()
		failStopped := false
		if !completed {
			w.atRest("MAIN MENU", "UNBINDING", "RETRY")
			failStopped = w.stop()
		}
		w.sameWrites(traced, pt)
		st := w.stored()
		t.Logf("%s: unbind completed %v, fail-stopped %v, intent %v, TID %q", pt, completed, failStopped, st.Intent != nil, st.Merchant.TID)
		w.checkStoredBeforeSent(st, pt)
		w.checkAcksStored(cmdID, pt)

		// The disk stays full, then space returns; HQ re-sends a command
		// without a final ack, as its re-send interval would.
		w.onFullDisk(failStopped && owes(st), pt)
		// HQ sees the full disk in the retained status.
		hq.waitStatus(r.Serial, remoteWait, func(s remote.Status) bool {
			return s.Online && s.DiskFreeKiB != nil && *s.DiskFreeKiB < terminal.MinFreeKiB
		})
		if err := os.Remove(filepath.Join(w.mnt, "ballast")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * remoteWait)
		resent := time.Now()
		for {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the unbind did not finish once space returned; last screens:\n%s\nlog tail:\n%s", pt, w.h.scr.Tail(6), tail(w.h.lastLog(), 4000))
			}
			if !w.h.running() {
				if w.h.exitSt != exitReboot {
					t.Fatalf("%s: exit status %d", pt, w.h.exitSt)
				}
				w.h.Start()
			}
			if _, ok := w.h.waitAny([]string{"NOT ACTIVATED"}, 300*time.Millisecond); ok && len(finalAcks(hq, cmdID)) > 0 {
				break
			}
			if time.Since(resent) > 4*time.Second && len(finalAcks(hq, cmdID)) == 0 {
				hq.publish(r.Serial, env)
				resent = time.Now()
			}
		}
		w.h.Stop()
		unbound(t, pt)
		hq.mu.Lock()
		for _, s := range hq.history {
			if s.Serial == r.Serial && s.Online && s.DiskFreeKiB == nil {
				t.Errorf("%s: a status without disk_free_kib: %+v", pt, s)
			}
		}
		hq.mu.Unlock()
		if t.Failed() {
			t.Fatalf("%s failed; log tail:\n%s", pt, tail(w.h.Logs(), 6000))
		}
	})
}

func finalAcks(hq *hqSide, id string) []hqAck {
	var out []hqAck
	for _, a := range hq.acksOf(id) {
		if a.Ack.Final() {
			out = append(out, a)
		}
	}
	return out
}

// checkAcksStored: every ack HQ holds for the command has its state on the
// terminal's disk: accepted → the intent (or the command finished), final
// → the command recorded with that ack.
func (w *writePoints) checkAcksStored(id, point string) {
	w.t.Helper()
	acks := w.hq.acksOf(id)
	if len(acks) == 0 {
		return
	}
	idPath, _, _ := storage.Paths(w.h.DataDir)
	ident, err := storage.OpenIdentity(idPath)
	if err != nil {
		w.t.Fatalf("open identity store: %v", err)
	}
	defer ident.Close()
	_, hasIntent, err := ident.Intent()
	if err != nil {
		w.t.Fatal(err)
	}
	seen, recorded, err := ident.Seen(id)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, a := range acks {
		switch {
		case a.Ack.Final():
			if !recorded || string(seen.Ack) != string(a.Raw) {
				w.t.Errorf("%s: HQ holds the final ack %s, the disk does not record it", point, a.Ack.State)
			}
		case a.Ack.State == remote.AckAccepted:
			if !hasIntent && !recorded {
				w.t.Errorf("%s: HQ holds accepted, the disk has neither the intent nor the command's final ack", point)
			}
		}
	}
}

package terminal

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
	"github.com/posagent/posagent/terminal/remote"
)

// Transcript tests: testdata/transcripts/NAME.txt is a script of events,
// NAME.golden the effects the machine answered, rendered as text. Run
//
//	go test ./terminal -run Transcript -update
//
// to regenerate the golden files, then review the diff like code.
var update = flag.Bool("update", false, "rewrite the transcript golden files")

var t0 = time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)

// testPwd "hashes" are the passwords themselves: the real KDF is the
// shell's; the core only calls the checker.
func testPwd(hash, pwd string) bool { return hash == pwd }

func TestTranscripts(t *testing.T) {
	scripts, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no transcripts found: %v", err)
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".txt")
		t.Run(name, func(t *testing.T) {
			got := runTranscript(t, script, nil)
			golden := strings.TrimSuffix(script, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("transcript %s differs from %s (run with -update and review the diff):\n%s", script, golden, diffLines(string(want), got))
			}
		})
	}
}

// runTranscript plays a script against a machine whose Persist effects
// are applied to a MemStore, executed in order as the shell does. Lines:
//
//	state active|unactivated|tampered   (what is on disk before boot)
//	serial S
//	needsignin                          (the secure element holds no MAK)
//	boot                                (build the machine from the store, Boot)
//	restart                             (the same after a reboot or a power cut)
//	persistfail                         (the next write fails: disk full)
//	disk KIB                            (the data directory's free space: DiskFree now and before every boot)
//	expect-failstops N                  (the fail-stop count the shell keeps)
//	keys 12<enter><cancel><clear>x      (one KeyPressed per key)
//	wait 30s                            (advance the clock, then Tick)
//	swipe ;PAN=YYMM...?
//	expect WORD                         (the screen must contain WORD)
//	expect-print WORD                   (the last receipt printed must contain WORD)
//	expect-store WHAT                   (reversal, no-reversal, settling, intent, no-intent, txns=N, stan=N)
//	printer paperout|offline|ready      (the printer's state)
//	keypad missing|back                 (the keypad device gone or back)
//	display fault                       (the configured display could not be opened)
//	version V                           (the running version from the next boot on; 1.0.0 before)
//	command ID update V [after-settlement]  (an update command to version V)
//	downloaded ID [REASON]              (the shell's answer to DownloadUpdate)
//	installed ID [error]                (the shell's answer to InstallUpdate)
//	markfail                            (the next MarkSlot fails)
//	# comment
//
// With zh non-nil the machine shows Chinese (WithLang(i18n.ZhCN)): every
// screen and receipt goes through zh's checks, and an expect of a
// spec/terminal.md English word waits for its Chinese word instead.
func runTranscript(t *testing.T, path string, zh *zhRun) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	store := NewMemStore(State{Serial: "PA00000001", TechPwdHash: "4321", SupervisorPwdHash: "123456",
		DeviceX25519Pub: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})
	keys := true // the secure element holds working keys
	var failNext, markFail bool
	version := "1.0.0" // the running version (the shell's build)
	signInWindow := time.Duration(0)
	failStops := 0       // the shell's fail-stop count, kept outside the store
	diskKiB := int64(-1) // the disk meter's last reading; -1 none
	var m *Machine
	now := t0
	var out strings.Builder
	var last Request       // the last Exchange asked for
	var lastPrint []string // the lines of the last receipt printed
	var lang i18n.Lang
	if zh != nil {
		lang = i18n.ZhCN
	}
	// write is one durable write of the shell: it fails when persistfail
	// armed it.
	write := func(ops []Op) error {
		if failNext {
			failNext = false
			return fmt.Errorf("write: no space left on device")
		}
		return store.Apply(ops)
	}
	var step func(ev Event)
	step = func(ev Event) {
		effs := m.Step(now, ev)
		if zh != nil {
			zh.checkFits(t, m)
		}
		var after []Event
		for _, e := range effs {
			out.WriteString("  " + renderEffect(e) + "\n")
			var err error
			switch e := e.(type) {
			case Show:
				if zh != nil {
					zh.checkText(t, "screen", e.Screen.Lines, store)
				}
			case Print:
				lastPrint = e.Receipt.Lines
				if zh != nil {
					zh.checkText(t, "receipt", e.Receipt.Lines, store)
				}
			case ChangeSupervisorPwd:
				// The shell's part: "hash" and store, then answer.
				err = write([]Op{PutSupervisorPwd{Hash: e.New}, PutPwdLock{}})
				after = append(after, SupervisorPwdStored{Hash: e.New, Err: err})
				err = nil
			case Exchange:
				last = e.Req
			case SetClock:
				now = e.At // the shell sets the clock
			case Persist:
				err = write(e.Ops)
			case SendAck:
				var ops []Op
				if e.SetIntent != nil {
					ops = append(ops, PutIntent{Intent: *e.SetIntent})
				}
				if e.ClearIntent {
					ops = append(ops, ClearIntentOp{})
				}
				if e.SetUpdate != nil {
					ops = append(ops, PutUpdate{Intent: *e.SetUpdate})
				}
				if e.ClearUpdate {
					ops = append(ops, ClearUpdateOp{})
				}
				err = write(ops) // the ack goes into the outbox in the same transaction
			case PublishEvent:
				err = write(nil) // the outbox
			case Wipe:
				keys = false
				if err := store.WipeMerchant(); err != nil {
					t.Fatalf("wipe: %v", err)
				}
			case ZeroiseKeys:
				keys = false
			case MarkSlot:
				// The shell calls RAUC and answers at once.
				var err error
				if markFail {
					markFail, err = false, fmt.Errorf("rauc: mark failed")
				}
				after = append(after, UpdateMarked{Err: err})
			case PutFailStops:
				failStops = e.N
			}
			if err != nil {
				// The shell stops at the failed write and tells the core.
				out.WriteString("  ! write failed: the effects after it are not executed\n")
				step(PersistFailed{Err: err})
				return
			}
		}
		for _, ev := range after {
			step(ev)
		}
	}
	boot := func() {
		st, err := store.Load()
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		st.WorkingKeys = keys
		st.FailStops = failStops
		st.Version = version
		m = New(st, testPwd, WithLang(lang), WithUpdateSignIn(signInWindow))
		if diskKiB >= 0 {
			step(DiskFree{KiB: diskKiB}) // the shell reads the meter before Boot
		}
		step(Boot{})
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, arg, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(cmd, "expect") {
			out.WriteString("> " + line + "\n")
		}
		switch cmd {
		case "state":
			l, ok := ParseLifecycle(arg)
			if !ok {
				t.Fatalf("%s:%d: bad state %q", path, n, arg)
			}
			var ops []Op
			if l == Active || l == Tampered {
				b := NewBinding(store.Base.Serial, "6222600000000000018", t0)
				ops = append(ops, PutParams{Merchant: Merchant{TID: "12345678", MID: "123456789012345", Name: "TEST SHOP", AcquirerAddr: "127.0.0.1:5000", TPDU: "6000030000"}},
					PutCounters{Counters: Counters{STAN: 0, Batch: 1}}, PutBinding{Binding: b})
			}
			if l == Tampered {
				ops = append(ops, SetTampered{On: true})
			}
			keys = l == Active // a provisioned terminal signed in
			if err := store.Apply(ops); err != nil {
				t.Fatal(err)
			}
		case "needsignin":
			keys = false
		case "persistfail":
			failNext = true
		case "disk":
			if diskKiB, err = strconv.ParseInt(arg, 10, 64); err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			if m != nil {
				step(DiskFree{KiB: diskKiB})
			}
		case "clock":
			// clock RFC3339: the terminal's clock jumps (a 1970 boot)
			at, err := time.Parse(time.RFC3339, arg)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			now = at
		case "floor":
			at, err := time.Parse(time.RFC3339, arg)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			if err := store.Apply([]Op{PutTimeFloor{At: at}}); err != nil {
				t.Fatal(err)
			}
		case "clocksynced":
			step(ClockSynced{})
		case "expect-clock":
			if got := fmt.Sprint(m.ClockTrusted()); got != arg {
				t.Errorf("%s:%d: clock trusted %s, want %s (now %s)", path, n, got, arg, now)
			}
		case "command":
			// command ID TYPE [UNSETTLED], command ID update VERSION [WHEN]
			f := strings.Fields(arg)
			c := RemoteCommand{ID: f[0], Type: f[1], ExpiresAt: t0.Add(time.Hour)}
			switch {
			case f[1] == "update":
				c.Update = &UpdateCmd{URL: "https://updates.example.com/" + f[2] + ".raucb", SHA256: strings.Repeat("ab", 32),
					Size: 1 << 20, Version: f[2], When: remote.UpdateIdle}
				if len(f) > 3 {
					c.Update.When = remote.UpdateWhen(f[3])
				}
			case len(f) > 2:
				c.Unsettled = remote.UnsettledPolicy(f[2])
			}
			step(CommandReceived{Cmd: c})
		case "version":
			version = arg
		case "signin-window":
			if signInWindow, err = time.ParseDuration(arg); err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
		case "downloaded":
			id, reason, _ := strings.Cut(arg, " ")
			step(UpdateDownloaded{CmdID: id, Reason: reason})
		case "installed":
			id, bad, _ := strings.Cut(arg, " ")
			var err error
			if bad != "" {
				err = fmt.Errorf("rauc: %s", bad)
			}
			step(UpdateInstalled{CmdID: id, Err: err})
		case "markfail":
			markFail = true
		case "wiped":
			step(Wiped{})
		case "provision":
			// provision CMDID [wrong|TID]: answer the pending activation request
			f := strings.Fields(arg)
			act := ""
			if m.activation != nil {
				act = m.activation.id
			}
			tid := "87654321"
			if len(f) > 1 {
				if f[1] == "wrong" {
					act = "someone-else"
				} else {
					tid = f[1]
				}
			}
			step(CommandReceived{Cmd: RemoteCommand{ID: f[0], Type: "provision", ExpiresAt: t0.Add(time.Hour),
				Provision: &ProvisionCmd{Activation: act, KCV: "ABCDEF", Merchant: Merchant{TID: tid, MID: "876543210987654", AcquirerAddr: "127.0.0.1:5000", TPDU: "6000030000"}}}})
		case "provisioned":
			step(Provisioned{Reason: arg})
		case "tamper":
			step(TamperDetected{})
		case "reply":
			r := parseReply(t, arg, last)
			if last.Kind == MsgSignIn && r.Err == nil && r.Resp.Approved() {
				keys = true
			}
			step(r)
		case "serial":
			store.Base.Serial = arg
		case "boot", "restart":
			boot()
		case "keys":
			for _, k := range parseKeys(arg) {
				step(KeyPressed{Key: k})
			}
		case "wait":
			d, err := time.ParseDuration(arg)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			now = now.Add(d)
			step(Tick{})
		case "swipe":
			c, err := hal.ParseTrack2(arg)
			step(CardSwiped{Card: c, Err: err})
		case "expect":
			if zh != nil {
				zh.expect(t, fmt.Sprintf("%s:%d", path, n), arg, m.Screen().Lines)
				break
			}
			if !m.Screen().Contains(arg) {
				t.Errorf("%s:%d: screen does not show %q:\n%s", path, n, arg, m.Screen())
			}
		case "expect-failstops":
			if got := strconv.Itoa(failStops); got != arg {
				t.Errorf("%s:%d: fail-stop count %s, want %s", path, n, got, arg)
			}
		case "expect-print":
			if zh != nil {
				zh.expect(t, fmt.Sprintf("%s:%d", path, n), arg, lastPrint)
				break
			}
			if !(hal.Screen{Lines: lastPrint}).Contains(arg) {
				t.Errorf("%s:%d: the last receipt does not show %q:\n%s", path, n, arg, strings.Join(lastPrint, "\n"))
			}
		case "printer":
			step(PrinterStatus{PaperOut: arg == "paperout", Offline: arg == "offline", Unreadable: arg == "unreadable"})
		case "keypad":
			step(KeypadStatus{Missing: arg == "missing"})
		case "display":
			step(DisplayStatus{Fault: arg == "fault"})
		case "expect-store":
			if err := checkStore(store, arg); err != nil {
				t.Errorf("%s:%d: store: %v", path, n, err)
			}
		default:
			t.Fatalf("%s:%d: unknown command %q", path, n, cmd)
		}
	}
	return out.String()
}

// checkStore checks one fact of what is on "disk".
func checkStore(s *MemStore, what string) error {
	st, err := s.Load()
	if err != nil {
		return err
	}
	k, v, _ := strings.Cut(what, "=")
	switch k {
	case "reversal":
		if st.Reversal == nil {
			return fmt.Errorf("no pending reversal")
		}
	case "no-reversal":
		if st.Reversal != nil {
			return fmt.Errorf("pending reversal %s", st.Reversal.Txn.STAN)
		}
	case "settling":
		if st.Settling == 0 {
			return fmt.Errorf("no settlement marker")
		}
	case "intent":
		if st.Intent == nil {
			return fmt.Errorf("no unbind intent")
		}
	case "no-intent":
		if st.Intent != nil {
			return fmt.Errorf("unbind intent %s", st.Intent.CmdID)
		}
	case "update":
		if st.Update == nil || (v != "" && string(st.Update.Stage) != v) {
			return fmt.Errorf("update intent %+v, want stage %q", st.Update, v)
		}
	case "no-update":
		if st.Update != nil {
			return fmt.Errorf("update intent %s (%s)", st.Update.CmdID, st.Update.Stage)
		}
	case "txns":
		if got := fmt.Sprint(len(st.Journal)); got != v {
			return fmt.Errorf("%s journal records in the open batch, want %s", got, v)
		}
	case "approved":
		n := 0
		for _, t := range st.Journal {
			if t.Status == Approved {
				n++
			}
		}
		if got := fmt.Sprint(n); got != v {
			return fmt.Errorf("%s approved in the open batch, want %s", got, v)
		}
	case "stan":
		if got := st.Counters.STAN.String(); got != v {
			return fmt.Errorf("STAN %s, want %s", got, v)
		}
	case "batch":
		if got := st.Counters.Batch.String(); got != v {
			return fmt.Errorf("batch %s, want %s", got, v)
		}
	case "tid":
		if st.Merchant.TID != v {
			return fmt.Errorf("TID %q, want %q", st.Merchant.TID, v)
		}
	default:
		return fmt.Errorf("unknown store fact %q", what)
	}
	return nil
}

func parseKeys(s string) []hal.Key {
	var keys []hal.Key
	for len(s) > 0 {
		if s[0] == '<' {
			end := strings.IndexByte(s, '>')
			switch s[1:end] {
			case "enter":
				keys = append(keys, hal.KeyEnter)
			case "cancel":
				keys = append(keys, hal.KeyCancel)
			case "clear":
				keys = append(keys, hal.KeyClear)
			}
			s = s[end+1:]
			continue
		}
		keys = append(keys, hal.Key(s[0]))
		s = s[1:]
	}
	return keys
}

// parseReply builds the answer to the last request:
//
//	reply 00|51|… [signin-again]   an answer with that field 39
//	reply badmac                   39=00 whose MAC failed
//	reply timeout                  written, no answer
//	reply nodial                   never written
//	reply settle 1|2               a settlement answer with that flag
//	reply garbage                  an answer that did not decode
func parseReply(t *testing.T, arg string, req Request) AcquirerReply {
	r := AcquirerReply{ID: req.ID}
	// The host's clock reads t0 (2026-11-21 10:30:00).
	resp := Response{STAN: req.STAN, TID: req.Merchant.TID, Batch: req.Batch, RespCode: "00",
		RRN: fmt.Sprintf("2511210%05d", req.STAN), Auth: fmt.Sprintf("38%04d", req.STAN%10000),
		LocalDate: t0.Format("0102"), LocalTime: t0.Format("150405")}
	f := strings.Fields(arg)
	switch f[0] {
	case "timeout":
		r.Err, r.Written = fmt.Errorf("read: i/o timeout"), true
		return r
	case "nodial":
		r.Err = fmt.Errorf("dial: connection refused")
		return r
	case "badmac":
		resp.MACBad = true
	case "garbage":
		resp = Response{Undecodable: true}
	case "settle":
		resp.SettleFlag = f[1][0]
	case "notime":
		resp.LocalDate, resp.LocalTime = "", ""
	default:
		resp.RespCode = f[0]
		if f[0] != "00" {
			resp.Auth = ""
		}
	}
	if len(f) > 1 && f[len(f)-1] == "signin-again" {
		resp.SignInAgain = true
	}
	r.Resp = resp
	return r
}

func renderEffect(e Effect) string {
	switch e := e.(type) {
	case Exchange:
		q := e.Req
		s := fmt.Sprintf("exchange #%d %s stan=%s batch=%s", q.ID, q.Kind, q.STAN, q.Batch)
		switch q.Kind {
		case MsgSale, MsgVoid, MsgReversal:
			s += fmt.Sprintf(" amount=%s pan=%s", q.Txn.Amount, q.Txn.PAN)
		}
		if q.Kind == MsgVoid {
			s += fmt.Sprintf(" orig=%s/%s rrn=%s auth=%s", q.Txn.OrigBatch, q.Txn.OrigSTAN, q.Txn.RRN, q.Txn.Auth)
		}
		if q.Kind == MsgReversal {
			s += fmt.Sprintf(" reason=%s auth=%q", q.Reason, q.Auth)
		}
		if q.Kind == MsgSettlement {
			s += fmt.Sprintf(" totals=%+v", q.Totals)
		}
		if q.Kind == MsgBatchUpload {
			s += fmt.Sprintf(" records=%d", len(q.Records))
		}
		if q.Kind == MsgBatchUploadEnd {
			s += fmt.Sprintf(" count=%d balanced=%v", q.Count, q.Balanced)
		}
		return s
	case SendAck:
		s := fmt.Sprintf("ack %s %s reason=%q seen=%v set-intent=%v clear-intent=%v result=%s", e.CmdID, e.State, e.Reason, e.Seen, e.SetIntent != nil, e.ClearIntent, e.Result)
		if e.SetUpdate != nil {
			s += " set-update=" + string(e.SetUpdate.Stage)
		}
		if e.ClearUpdate {
			s += " clear-update"
		}
		return s
	case PublishEvent:
		return fmt.Sprintf("event %s %s", e.Type, e.Data)
	case Provision:
		return fmt.Sprintf("provision %s kcv=%s", e.CmdID, e.KCV)
	case Print:
		return "print | " + strings.Join(e.Receipt.Lines, " | ")
	case Show:
		return "show | " + strings.Join(e.Screen.Lines, " | ")
	case Persist:
		var ops []string
		for _, op := range e.Ops {
			if pi, ok := op.(PutIntent); ok {
				b, _ := json.Marshal(pi.Intent)
				ops = append(ops, "terminal.PutIntent"+string(b))
				continue
			}
			if pu, ok := op.(PutUpdate); ok {
				ops = append(ops, fmt.Sprintf("terminal.PutUpdate{%s %s}", pu.Intent.CmdID, pu.Intent.Stage))
				continue
			}
			ops = append(ops, fmt.Sprintf("%T%+v", op, op))
		}
		return "persist " + strings.Join(ops, "; ")
	case Log:
		var a []string
		for _, at := range e.Attrs {
			a = append(a, at.String())
		}
		return fmt.Sprintf("log %s %q %s", e.Level, e.Msg, strings.Join(a, " "))
	default:
		return fmt.Sprintf("%T%+v", e, e)
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

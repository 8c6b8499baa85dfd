package usblp

import (
	"bytes"
	"errors"
	"flag"
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
	"github.com/posagent/posagent/hal/escpos"
	"github.com/posagent/posagent/terminal/i18n"
)

var update = flag.Bool("update", false, "rewrite testdata/receipt-zh.bin")

// zhReceipt is a merchant copy of a zh-CN sale, words from the catalog, as
// the core lays it out (spec/terminal.md "Language": receipt words).
func zhReceipt() hal.Receipt {
	l := i18n.ZhCN
	return hal.Receipt{Lines: []string{
		l.T(i18n.RcptMerchantCopy),
		l.T(i18n.RcptMerchantName) + ": 上海测试商户",
		l.T(i18n.RcptMerchantNo) + ": 123456789012345",
		l.T(i18n.RcptTerminalNo) + ": 12345678",
		l.T(i18n.RcptCardNo) + ": 622588******1234",
		l.T(i18n.RcptTxnType) + ": " + l.T(i18n.Sale),
		l.T(i18n.RcptBatchNo) + ": 000001 " + l.T(i18n.RcptVoucherNo) + ": 000042",
		l.T(i18n.RcptAuthCode) + ": 123456 " + l.T(i18n.RcptRefNo) + ": 123456789012",
		l.T(i18n.RcptDateTime) + ": 2026-12-04 10:30:00",
		l.T(i18n.RcptAmount) + ": 12.34",
		"",
		l.T(i18n.RcptSignature) + ":",
		"",
		"本人确认以上交易，同意将其",
		"记入本卡账户",
	}}
}

// fakePrinter is the far side of two FIFOs: it reads what the adapter
// sends (receipts and DLE EOT 4 requests) and answers the requests from a
// script, like an ESC/POS printer on USB.
type fakePrinter struct {
	in, out *os.File // printer's input (adapter writes), printer's output (adapter reads)

	mu       sync.Mutex
	printed  bytes.Buffer
	requests int
	answer   func(n int) []byte // the answer to the n-th request (from 1); nil = none
}

func (f *fakePrinter) serve() {
	buf := make([]byte, 4096)
	var pend []byte
	for {
		n, err := f.in.Read(buf)
		if err != nil {
			return
		}
		pend = append(pend, buf[:n]...)
		for {
			i := bytes.Index(pend, cmdPaperStatus)
			if i < 0 {
				// keep a possible partial request at the end
				keep := 0
				for k := 1; k < len(cmdPaperStatus) && k <= len(pend); k++ {
					if bytes.HasSuffix(pend, cmdPaperStatus[:k]) {
						keep = k
					}
				}
				f.mu.Lock()
				f.printed.Write(pend[:len(pend)-keep])
				f.mu.Unlock()
				pend = append([]byte(nil), pend[len(pend)-keep:]...)
				break
			}
			f.mu.Lock()
			f.printed.Write(pend[:i])
			f.requests++
			a := f.answer(f.requests)
			f.mu.Unlock()
			if a != nil {
				f.out.Write(a)
			}
			pend = pend[i+len(cmdPaperStatus):]
		}
	}
}

func (f *fakePrinter) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.printed.Bytes()...)
}

// fifoDevice is the adapter's side of the two FIFOs, one Device as the
// usblp character device is.
type fifoDevice struct{ r, w *os.File }

func (d fifoDevice) Read(p []byte) (int, error)        { return d.r.Read(p) }
func (d fifoDevice) Write(p []byte) (int, error)       { return d.w.Write(p) }
func (d fifoDevice) SetReadDeadline(t time.Time) error { return d.r.SetReadDeadline(t) }
func (d fifoDevice) Close() error                      { return errors.Join(d.r.Close(), d.w.Close()) }

func newFake(t *testing.T, answer func(int) []byte) (*fakePrinter, Opener) {
	t.Helper()
	dir := t.TempDir()
	toPrinter, fromPrinter := filepath.Join(dir, "lp0.in"), filepath.Join(dir, "lp0.out")
	for _, p := range []string{toPrinter, fromPrinter} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// O_RDWR: neither side blocks waiting for the other to open.
	in, err := os.OpenFile(toPrinter, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(fromPrinter, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePrinter{in: in, out: out, answer: answer}
	go f.serve()
	t.Cleanup(func() { in.Close(); out.Close() })
	return f, func() (Device, error) {
		r, err := os.OpenFile(fromPrinter, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		w, err := os.OpenFile(toPrinter, os.O_RDWR, 0)
		if err != nil {
			r.Close()
			return nil, err
		}
		return fifoDevice{r, w}, nil
	}
}

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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var zhOptions = Options{ESCPOS: escpos.Options{Encoding: escpos.GB18030, ChineseMode: true}, StatusTimeout: 200 * time.Millisecond, PaperPoll: 20 * time.Millisecond}

// TestPaperOutThenBack: the printer says paper out; the receipt waits,
// Print says hal.ErrPaperOut for the next one, the status goes paper out
// then ready, and once paper is back both receipts print, in order, as the
// golden GB18030 bytes.
func TestPaperOutThenBack(t *testing.T) {
	const outFor = 4 // requests answered "paper end"
	f, open := newFake(t, func(n int) []byte {
		if n <= outFor {
			return []byte{0x72} // 0x12 | paper end (bits 5-6)
		}
		return []byte{0x12 | 0x0C} // paper present (near end: still prints)
	})
	log, logs := newLog()
	p := New("lp0", open, zhOptions, log)
	defer p.Close()

	r := zhReceipt()
	if err := p.Print(r); err != nil {
		t.Fatalf("first Print: %v", err)
	}
	if st := <-p.PrinterStatus(); st != hal.PrinterPaperOut {
		t.Fatalf("status %v, want paper out", st)
	}
	if b := f.bytes(); len(b) != 0 {
		t.Fatalf("printed %d bytes while out of paper", len(b))
	}
	err := p.Print(r)
	if !errors.Is(err, hal.ErrPaperOut) {
		t.Fatalf("Print while out of paper = %v, want ErrPaperOut", err)
	}
	select {
	case st := <-p.PrinterStatus():
		if st != hal.PrinterReady {
			t.Fatalf("status %v, want ready", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("paper never came back")
	}
	one := escpos.Encode(r, zhOptions.ESCPOS)
	waitFor(t, "both receipts", func() bool { return len(f.bytes()) >= 2*len(one) })
	got := f.bytes()
	golden := filepath.Join("testdata", "receipt-zh.bin")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, one, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run TestPaperOutThenBack -update)", err)
	}
	if !bytes.Equal(got, append(append([]byte(nil), want...), want...)) {
		t.Fatalf("printed\n%q\nwant the golden receipt twice\n%q", got, want)
	}
	// The golden is GB18030: 消费 is CF FB B7 D1, inside FS & ... FS .
	if !bytes.Contains(want, []byte{0xCF, 0xFB, 0xB7, 0xD1}) || !bytes.HasPrefix(want, []byte("\x1b@\x1c&")) {
		t.Fatal("golden receipt is not GB18030 in Chinese mode")
	}
	if p.Pending() != 0 {
		t.Fatalf("%d receipts still pending", p.Pending())
	}
	s := logs.String()
	if strings.Count(s, "out of paper") != 1 || strings.Count(s, "printer back") != 1 {
		t.Errorf("want one line for paper out and one for paper back:\n%s", s)
	}
}

// TestSilentPrinter: a printer that does not answer DLE EOT prints all the
// same, its status unknown, nothing logged.
func TestSilentPrinter(t *testing.T) {
	f, open := newFake(t, func(int) []byte { return nil })
	log, logs := newLog()
	p := New("lp0", open, Options{StatusTimeout: 30 * time.Millisecond}, log)
	defer p.Close()
	r := hal.Receipt{Lines: []string{"SALE", "AMOUNT 12.34"}}
	if err := p.Print(r); err != nil {
		t.Fatal(err)
	}
	want := escpos.Encode(r, escpos.Options{})
	waitFor(t, "the receipt", func() bool { return bytes.Equal(f.bytes(), want) })
	if p.Status() != hal.PrinterUnknown {
		t.Errorf("status %v, want unknown", p.Status())
	}
	if s := logs.String(); s != "" {
		t.Errorf("logged %q for a printer that printed", s)
	}
}

// TestUnknownAnswer: an answer that is not a status byte gives one clear
// log line (not one per receipt), the receipts print, and the status says
// unreadable (the screen shows it: a paper end would go unnoticed).
func TestUnknownAnswer(t *testing.T) {
	f, open := newFake(t, func(int) []byte { return []byte{0xFF} })
	log, logs := newLog()
	p := New("lp0", open, Options{StatusTimeout: 100 * time.Millisecond}, log)
	defer p.Close()
	r := hal.Receipt{Lines: []string{"X"}}
	for range 3 {
		if err := p.Print(r); err != nil {
			t.Fatal(err)
		}
	}
	want := bytes.Repeat(escpos.Encode(r, escpos.Options{}), 3)
	waitFor(t, "three receipts", func() bool { return bytes.Equal(f.bytes(), want) })
	s := logs.String()
	if strings.Count(s, "not a status") != 1 || !strings.Contains(s, "answer=0xff") || !strings.Contains(s, "printer=lp0") {
		t.Errorf("want one line naming the answer and the printer:\n%s", s)
	}
	if st := p.Status(); st != hal.PrinterUnreadable {
		t.Errorf("status %v, want %v", st, hal.PrinterUnreadable)
	}
	select {
	case st := <-p.PrinterStatus():
		if st != hal.PrinterUnreadable {
			t.Errorf("status change %v, want %v", st, hal.PrinterUnreadable)
		}
	default:
		t.Error("no status change reported")
	}
}

// TestOfflineKeepsReceipts: a printer that cannot be opened keeps the
// receipts (Print says ErrOffline once it knows), logs once, and prints
// them when it comes back.
func TestOfflineKeepsReceipts(t *testing.T) {
	old := MinBackoff
	MinBackoff = 5 * time.Millisecond
	defer func() { MinBackoff = old }()
	f, open := newFake(t, func(int) []byte { return []byte{0x12} })
	var mu sync.Mutex
	fails := 5
	log, logs := newLog()
	p := New("lp0", func() (Device, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, &os.PathError{Op: "open", Path: "/dev/usb/lp0", Err: syscall.ENODEV}
		}
		return open()
	}, Options{}, log)
	defer p.Close()
	r := hal.Receipt{Lines: []string{"A"}}
	if err := p.Print(r); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "offline", func() bool { return p.Status() == hal.PrinterOffline || len(f.bytes()) > 0 })
	err := p.Print(r)
	if len(f.bytes()) == 0 && !errors.Is(err, ErrOffline) {
		t.Fatalf("Print while offline = %v", err)
	}
	want := bytes.Repeat(escpos.Encode(r, escpos.Options{}), 2)
	waitFor(t, "both receipts", func() bool { return bytes.Equal(f.bytes(), want) })
	if s := logs.String(); strings.Count(s, "printer unavailable") != 1 {
		t.Errorf("want one 'unavailable' line for five failed opens:\n%s", s)
	}
}

func TestQueueFull(t *testing.T) {
	_, open := newFake(t, func(int) []byte { return []byte{0x72} }) // paper out for good
	log, _ := newLog()
	p := New("lp0", open, Options{Queue: 2, PaperPoll: time.Hour}, log)
	defer p.Close()
	r := hal.Receipt{Lines: []string{"A"}}
	p.Print(r)
	p.Print(r)
	if err := p.Print(r); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third Print = %v, want ErrQueueFull", err)
	}
}

var _ io.ReadWriteCloser = fifoDevice{}

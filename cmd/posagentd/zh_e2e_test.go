package main

// End-to-end tests of the Chinese terminal and of the Linux device
// adapters (spec/terminal.md "Language", "Devices"): the real posagentd,
// the acquirer simulator, the same harness as the English flows, with
// [ui] lang = "zh-CN" and the words the Chinese screens show.

import (
	"bytes"
	"debug/elf"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/hal/evdev"
	"github.com/posagent/posagent/hal/fbdev"
	"github.com/posagent/posagent/iso8583/hostsim"
)

// Screens returns every screen shown so far (since the last Start).
func (h *Term) Screens() []string {
	return h.scr.All()
}

// latinWord is a token of a screen with a Latin letter in it.
var latinWord = regexp.MustCompile(`[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*`)

// checkChineseScreens fails on any English on the Chinese screens shown
// so far: a Latin word is allowed only for a code (A0, MAC, RMB) or a
// datum shown as it is (allowed).
func checkChineseScreens(t *testing.T, h *Term, allowed ...string) {
	t.Helper()
	ok := map[string]bool{"A0": true, "MAC": true, "RMB": true}
	for _, a := range allowed {
		ok[a] = true
	}
	for i, s := range h.Screens() {
		for _, w := range latinWord.FindAllString(s, -1) {
			if !ok[w] {
				t.Errorf("zh-CN screen #%d shows English %q: %q", i, w, s)
			}
		}
	}
}

// TestE2ECashierZhCN: the cashier's flow of TestE2ECashierDay on a
// zh-CN terminal, waiting for the Chinese words: sales (交易成功), a void
// by voucher (确认撤销? → 交易成功), the refusals, a reprint (重打印凭证 on
// paper), a balanced settlement (确认结算? → 结算成功). The receipts reach
// the printer file in GB18030 with the Chinese receipt words, PANs masked.
func TestE2ECashierZhCN(t *testing.T) {
	sim := startAcqSim(t)
	h := NewTerm(t, sim, TermOptions{Lang: "zh-CN"})
	h.WaitScreen("主菜单", waitTimeout)

	s := h.Sale(12345, track2A)
	mustContain(t, "sale", s, "交易成功", "金额 123.45", "消费")
	v1 := voucherOf(t, s)
	h.Keys("\r")
	s = h.Sale(5000, track2B)
	mustContain(t, "sale", s, "交易成功", "金额 50.00")
	v2 := voucherOf(t, s)
	h.Keys("\r")

	s = h.voidByVoucher(v2)
	mustContain(t, "confirm", s, "确认撤销?", "金额 50.00", maskedB, "凭证号 "+v2)
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "交易成功", "交易拒绝", "错误")
	mustContain(t, "void", s, "撤销", "交易成功")
	voidV := voucherOf(t, s)
	h.Keys("\r")
	h.WaitScreen("交易管理", waitTimeout)
	if tx := h.hostTxn("000001", v2); tx.State != hostsim.StateVoided || tx.VoidSTAN != voidV {
		t.Errorf("host sale %s after the void: %+v, want voided by %s", v2, tx, voidV)
	}

	s = h.voidByVoucher(v2)
	mustContain(t, "second void", s, "原交易已撤销")
	h.Keys("\r")
	s = h.voidByVoucher("999")
	mustContain(t, "unknown voucher", s, "原交易不存在")
	h.Keys("\r")
	s = h.voidByVoucher(voidV)
	mustContain(t, "void of a void", s, "原交易不可撤销")
	h.Keys("\r")

	// The journal, then REPRINT LAST (the void).
	h.WaitScreen("交易管理", waitTimeout)
	h.Keys("2")
	s = h.WaitScreen("交易明细", waitTimeout)
	mustContain(t, "journal", s, v1+" 消费 123.45", voidV+" 撤销 50.00")
	h.Keys("x")
	h.WaitScreen("交易管理", waitTimeout)
	h.Keys("3")
	h.WaitScreen("正在打印", waitTimeout)
	h.Keys("\r")

	// Balanced settlement.
	h.WaitScreen("交易管理", waitTimeout)
	h.Keys("x")
	h.WaitScreen("主菜单", waitTimeout)
	h.Keys("3")
	s = h.WaitScreen("确认结算?", waitTimeout)
	mustContain(t, "settle confirm", s, "消费   2 173.45", "撤销   1 50.00", "净额 123.45")
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "结算成功", "结算失败")
	if !strings.Contains(s, "结算成功") || strings.Contains(s, "已批上送") {
		t.Errorf("settlement screen %q, want 结算成功 (balanced)", s)
	}
	h.Keys("\r")
	if b := h.HostTerminal().Batch("000001"); b == nil || !b.Closed || b.Reconciled != hostsim.ReconciledBalanced {
		t.Errorf("host batch 000001 after settlement: %+v", b)
	}
	h.WaitScreen("主菜单", waitTimeout)
	checkChineseScreens(t, h)

	// The receipts: GB18030 bytes (what a Chinese printer's font reads),
	// the Chinese receipt words, PANs masked (the clear PANs are checked
	// at cleanup).
	raw := []byte(h.PrinterText())
	if bytes.Contains(raw, []byte("商户名称")) {
		t.Errorf("printer file holds UTF-8 Chinese; want GB18030")
	}
	text, err := simplifiedchinese.GB18030.NewDecoder().Bytes(raw)
	if err != nil || !utf8.Valid(text) {
		t.Fatalf("printer file is not GB18030: %v", err)
	}
	mustContain(t, "printer file", string(text),
		"商户存根", "商户名称 E2E SHOP", "商户编号 123456789012345", "终端编号 12345678",
		"卡号 "+maskedA, "卡号 "+maskedB, "交易类型 消费", "交易类型 撤销",
		"批次号 000001 凭证号 "+v1, "授权码 ", "参考号 ", "日期时间 ", "金额(RMB) 123.45", "金额(RMB) -50.00",
		"原凭证号 "+v2, "持卡人签名", "*** 重打印凭证 ***", "结算单", "结算成功")
}

// daemonLayout is the input_event layout of the posagentd under test:
// the 16-byte one of a 32-bit build (the ARMv7 daemon under qemu in `make
// test-arm`), else the 24-byte one.
func daemonLayout(t *testing.T) evdev.Layout {
	t.Helper()
	f, err := elf.Open(daemonBin)
	if err != nil {
		t.Fatalf("read the daemon's ELF header: %v", err)
	}
	defer f.Close()
	if f.Class == elf.ELFCLASS32 {
		return evdev.Layout32
	}
	return evdev.Layout64
}

// evdevKeys writes input_event records of layout l for keys as the
// harness types them ("0"-"9", "\r" Enter, "x" Cancel, "\x7f" Clear): a
// press, then a release (which the keypad ignores).
func evdevKeys(w *os.File, l evdev.Layout) func(string) error {
	return func(keys string) error {
		var b []byte
		for _, c := range []byte(keys) {
			var code uint16
			switch {
			case c == '0':
				code = evdev.Code0
			case c >= '1' && c <= '9':
				code = evdev.Code1 + uint16(c-'1')
			case c == '\r':
				code = evdev.CodeKPEnter
			case c == 'x':
				code = evdev.CodeEsc
			case c == 0x7f:
				code = evdev.CodeBackspace
			default:
				continue
			}
			b = append(b, evdev.Encode(l, code, 1)...)
			b = append(b, evdev.Encode(l, code, 0)...)
		}
		_, err := w.Write(b)
		return err
	}
}

// TestE2EEvdevKeypad: a terminal whose keypad is a Linux input device
// (kind = "linux", keypad = "evdev:…", here a FIFO: the adapter reads it
// as is when EVIOCGRAB answers ENOTTY). The device is missing at boot:
// one log line and NO KEYPAD on the console; once it appears the notice
// goes, and input_event records written through the pipe drive a sale and
// a void to APPROVED. Nothing is typed on the console.
func TestE2EEvdevKeypad(t *testing.T) {
	sim := startAcqSim(t)
	event := filepath.Join(t.TempDir(), "event0")
	prn := newPrinterPty(t, nil)
	h := NewTerm(t, sim, TermOptions{HAL: map[string]string{
		"kind": "linux", "keypad": "evdev:" + event, "printer": prn.path}})
	s := h.WaitScreen("NO KEYPAD", waitTimeout)
	mustContain(t, "boot screen", s, "MAIN MENU")
	// The log reaches the harness through a pipe of its own: the screen
	// can be read before the line that goes with it.
	waitLog(t, h, "keypad unavailable")
	if n := strings.Count(h.Logs(), "keypad unavailable"); n != 1 {
		t.Errorf("%d 'keypad unavailable' log lines, want 1:\n%s", n, h.Logs())
	}

	h.mark = h.scr.Count() // the screens from here on
	if err := mkfifo(event); err != nil {
		t.Fatal(err)
	}
	// O_RDWR: the open does not wait for the reader, and the pipe never
	// reads EOF while the test holds it.
	w, err := os.OpenFile(event, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	h.keypad = evdevKeys(w, daemonLayout(t))
	h.waitFor(func(s string) bool { return strings.Contains(s, "MAIN MENU") && !strings.Contains(s, "NO KEYPAD") })

	s = h.Sale(2345, track2A)
	mustContain(t, "sale by evdev keys", s, "APPROVED", "AMOUNT 23.45")
	v := voucherOf(t, s)
	h.Keys("\r")
	s = h.voidByVoucher(v)
	mustContain(t, "confirm", s, "VOID?", "23.45", maskedA)
	h.Keys("\r")
	s, _ = h.WaitAny(waitTimeout, "APPROVED", "DECLINED", "ERROR")
	mustContain(t, "void by evdev keys", s, "APPROVED")
	if tx := h.hostTxn("000001", v); tx.State != hostsim.StateVoided {
		t.Errorf("host sale %s: %+v, want voided", v, tx)
	}
	prn.waitFor(t, "TYPE VOID")
}

// TestE2EPaperOutZhCN: a zh-CN terminal with a USB printer (kind =
// "linux", printer = "usblp:…", here a pty the test answers as the
// printer does, DLE EOT 4 included). Paper out during a sale: the sale is
// approved and journaled, the screen says 缺纸, the receipt waits; REPRINT
// LAST still works; paper back: 缺纸 goes and both receipts print, in
// order, in GB18030.
func TestE2EPaperOutZhCN(t *testing.T) {
	sim := startAcqSim(t)
	paper := &paperSensor{}
	paper.set(true)
	prn := newPrinterPty(t, paper)
	h := NewTerm(t, sim, TermOptions{Lang: "zh-CN", HAL: map[string]string{"kind": "linux", "printer": "usblp:" + prn.path}})
	h.WaitScreen("主菜单", waitTimeout)

	s := h.Sale(1000, track2A)
	mustContain(t, "first sale", s, "交易成功")
	h.Keys("\r")
	prn.waitFor(t, "金额(RMB) 10.00")

	paper.set(false)
	s = h.Sale(2000, track2B)
	mustContain(t, "sale without paper", s, "交易成功", "金额 20.00")
	v := voucherOf(t, s)
	h.WaitScreen("缺纸", waitTimeout)
	if tx := h.hostTxn("000001", v); tx.State != hostsim.StateApproved {
		t.Errorf("host sale %s: %+v, want approved", v, tx)
	}
	if strings.Contains(prn.text(t), "金额(RMB) 20.00") {
		t.Fatal("a receipt printed while the paper was out")
	}
	h.Keys("\r")
	s = h.WaitScreen("主菜单", waitTimeout)
	mustContain(t, "menu while paper is out", s, "缺纸")
	h.Keys("2")
	h.WaitScreen("交易管理", waitTimeout)
	h.Keys("2")
	s = h.WaitScreen("交易明细", waitTimeout)
	mustContain(t, "journal", s, v+" 消费 20.00")
	h.Keys("x")
	h.WaitScreen("交易管理", waitTimeout)
	h.Keys("3")
	h.WaitScreen("正在打印", waitTimeout)
	h.Keys("\r")
	h.WaitScreen("交易管理", waitTimeout)

	h.mark = h.scr.Count() // the screens from here on
	paper.set(true)
	h.waitFor(func(s string) bool { return strings.Contains(s, "交易管理") && !strings.Contains(s, "缺纸") })
	out := prn.waitFor(t, "*** 重打印凭证 ***")
	i, j := strings.Index(out, "金额(RMB) 20.00"), strings.Index(out, "重打印凭证")
	if i < 0 || j < i {
		t.Errorf("after paper is back: the sale's receipt, then its reprint; printed:\n%s", out)
	}
	if n := strings.Count(h.Logs(), "printer out of paper; receipts wait"); n != 1 {
		t.Errorf("%d 'out of paper' log lines, want 1", n)
	}
	checkChineseScreens(t, h)
}

// TestE2EFramebufferZhCN: a framebuffer on a regular file (the
// simulator's display = "fb:…" with display_geometry 320x240x16) shows
// the zh-CN MAIN MENU exactly as hal/fbdev's golden picture; a
// framebuffer that cannot be opened is one log line and 显示屏故障 on the
// console.
func TestE2EFramebufferZhCN(t *testing.T) {
	sim := startAcqSim(t)
	fb := filepath.Join(t.TempDir(), "fb0")
	h := NewTerm(t, sim, TermOptions{Lang: "zh-CN", HAL: map[string]string{"display": "fb:" + fb, "display_geometry": "320x240x16"}})
	h.WaitScreen("主菜单", waitTimeout)
	f, err := os.Open(filepath.Join("..", "..", "hal", "fbdev", "testdata", "main-menu-zh-320x240.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The console shows a screen a moment before the framebuffer does:
	// wait for the panel's copy.
	g := fbdev.GeometryOf(320, 240, 16)
	deadline := time.Now().Add(waitTimeout)
	for {
		b, err := os.ReadFile(fb)
		if err != nil {
			t.Fatal(err)
		}
		x, y, ok := -1, -1, false
		if len(b) == g.LineLength*g.Height {
			x, y, ok = samePicture(g.Decode(b), want)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the framebuffer's MAIN MENU (%d bytes) differs from hal/fbdev's golden at (%d,%d)", len(b), x, y)
		}
		time.Sleep(50 * time.Millisecond)
	}

	bad := NewTerm(t, sim, TermOptions{Lang: "zh-CN", TID: "12345679", HAL: map[string]string{"display": "fb:" + filepath.Join(t.TempDir(), "none", "fb0")}})
	s := bad.WaitScreen("显示屏故障", waitTimeout)
	mustContain(t, "console", s, "主菜单")
	if n := strings.Count(bad.Logs(), "framebuffer unusable"); n != 1 {
		t.Errorf("%d 'framebuffer unusable' log lines, want 1", n)
	}
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }

func samePicture(a, b image.Image) (int, int, bool) {
	if a.Bounds() != b.Bounds() {
		return -1, -1, false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				return x, y, false
			}
		}
	}
	return 0, 0, true
}

// paperSensor is the paper roll sensor of a simulated ESC/POS printer.
type paperSensor struct{ out atomic.Bool }

func (p *paperSensor) set(present bool) { p.out.Store(!present) }

// status is the answer to DLE EOT 4: bits 1 and 4 always set, bits 5-6
// for paper end.
func (p *paperSensor) status() byte {
	if p.out.Load() {
		return 0x72
	}
	return 0x12
}

// printerPty is a receipt printer behind a pty: the daemon opens the
// slave by its path (as /dev/usb/lp0 or /dev/ttyS3), the test plays the
// printer on the master. With a paper sensor it answers DLE EOT 4 as an
// ESC/POS printer does.
type printerPty struct {
	path  string
	paper *paperSensor

	mu      sync.Mutex
	printed []byte // everything but the status requests
}

var dleEOT4 = []byte{0x10, 0x04, 0x04}

func newPrinterPty(t *testing.T, paper *paperSensor) *printerPty {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	// Raw, as a USB printer's device is: no echo, no newline mangling.
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	p := &printerPty{path: s.Name(), paper: paper}
	go func() {
		buf := make([]byte, 4096)
		var pending []byte
		for {
			n, err := m.Read(buf)
			if err != nil {
				return
			}
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.Index(pending, dleEOT4)
				if i < 0 {
					break
				}
				p.mu.Lock()
				p.printed = append(p.printed, pending[:i]...)
				p.mu.Unlock()
				pending = pending[i+len(dleEOT4):]
				if p.paper != nil {
					m.Write([]byte{p.paper.status()})
				}
			}
			// Keep what may be the start of a request.
			keep := 0
			for k := len(dleEOT4) - 1; k > 0; k-- {
				if bytes.HasSuffix(pending, dleEOT4[:k]) {
					keep = k
					break
				}
			}
			p.mu.Lock()
			p.printed = append(p.printed, pending[:len(pending)-keep]...)
			p.mu.Unlock()
			pending = pending[len(pending)-keep:]
		}
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return p
}

// text is what printed so far, decoded from GB18030 (ASCII is itself).
func (p *printerPty) text(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	b := append([]byte(nil), p.printed...)
	p.mu.Unlock()
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b)
	if err != nil {
		t.Fatalf("printed bytes are not GB18030: %v", err)
	}
	return string(out)
}

// waitFor waits until the printed text contains want and returns it.
func (p *printerPty) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := p.text(t)
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the printer never printed %q; printed:\n%q", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package hostsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/iso8583/reference"
)

const (
	testTID   = "12345678"
	testMID   = "123456789012345"
	testPAN   = "6222021234567890123"
	testTrack = "6222021234567890123=25122010000000000"
)

var (
	reqTPDU   = [5]byte{0x60, 0x00, 0x03, 0x00, 0x00}
	reqHeader = [6]byte{0x60, 0x31, 0x00, 0x31, 0x00, 0x00}
)

func mustTMK(t testing.TB) []byte {
	t.Helper()
	k, err := ParseTMK(DefaultTMK)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startHost runs a Host on 127.0.0.1:0.
func startHost(t *testing.T, cfg Config) (*Host, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	h := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Serve(ln) }()
	t.Cleanup(func() {
		h.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h, ln.Addr().String()
}

// terminal is a minimal terminal on the reference codec.
type terminal struct {
	t      *testing.T
	client *link.Client
	tid    string
	tmk    []byte
	mak    [8]byte
	stan   int
	batch  string
}

func newTerminal(t *testing.T, addr string) *terminal {
	return &terminal{t: t, client: &link.Client{Addr: addr, Timeout: 2 * time.Second, DialTimeout: time.Second},
		tid: testTID, tmk: mustTMK(t), batch: "000001"}
}

type reply struct {
	tpdu   [5]byte
	header [6]byte
	mti    string
	f      map[int]string
	frame  []byte
}

func (c *terminal) nextSTAN() string {
	c.stan++
	return fmt.Sprintf("%06d", c.stan)
}

// send packs (MACing when withMAC), exchanges and decodes.
func (c *terminal) send(mti string, f map[int]string, withMAC bool) (*reply, error) {
	c.t.Helper()
	f = maps.Clone(f)
	if withMAC {
		f[64] = "0000000000000000"
	}
	frame, err := reference.Pack(reqTPDU, reqHeader, mti, f)
	if err != nil {
		c.t.Fatalf("pack %s: %v", mti, err)
	}
	if withMAC {
		block, err := iso8583.MACBlock(frame)
		if err != nil {
			c.t.Fatal(err)
		}
		m, err := mac.CUPECB(c.mak[:], block)
		if err != nil {
			c.t.Fatal(err)
		}
		if err := iso8583.PutMAC(frame, m[:]); err != nil {
			c.t.Fatal(err)
		}
	}
	buf := make([]byte, link.MaxFrame)
	n, err := c.client.Exchange(context.Background(), frame, buf)
	if err != nil {
		return nil, err
	}
	r := &reply{frame: buf[:n]}
	r.tpdu, r.header, r.mti, r.f, err = reference.Unpack(buf[:n])
	if err != nil {
		c.t.Fatalf("unpack answer: %v", err)
	}
	return r, nil
}

func (c *terminal) mustSend(mti string, f map[int]string, withMAC bool) *reply {
	c.t.Helper()
	r, err := c.send(mti, f, withMAC)
	if err != nil {
		c.t.Fatalf("%s: %v", mti, err)
	}
	return r
}

// macOK verifies the answer's field 64 with the terminal's MAK.
func (c *terminal) macOK(r *reply) bool {
	c.t.Helper()
	block, err := iso8583.MACBlock(r.frame)
	if err != nil {
		return false
	}
	got, _ := hex.DecodeString(r.f[64])
	m, _ := mac.NewMACer(c.mak[:])
	return m.Verify(block, got)
}

func (c *terminal) signIn() *reply {
	c.t.Helper()
	r := c.mustSend("0800", map[int]string{11: c.nextSTAN(), 41: c.tid, 42: testMID, 60: "00" + c.batch + "00300", 63: "01 "}, false)
	if r.f[39] == "00" {
		f62, err := hex.DecodeString(r.f[62])
		if err != nil {
			c.t.Fatal(err)
		}
		_, mak, err := mac.UnwrapWorkingKeys(c.tmk, f62)
		if err != nil {
			c.t.Fatalf("unwrap 62: %v", err)
		}
		c.mak = mak
		c.batch = r.f[60][2:8]
	}
	return r
}

func (c *terminal) saleFields(stan string, amount int64) map[int]string {
	return map[int]string{2: testPAN, 3: "000000", 4: fmt.Sprintf("%012d", amount), 11: stan, 14: "2512",
		22: "021", 25: "00", 35: testTrack, 41: c.tid, 42: testMID, 49: "156", 60: "22" + c.batch + "00000", 63: "01 "}
}

func (c *terminal) sale(amount int64) (string, *reply, error) {
	stan := c.nextSTAN()
	r, err := c.send("0200", c.saleFields(stan, amount), true)
	return stan, r, err
}

func (c *terminal) voidFields(stan, origSTAN string, amount int64) map[int]string {
	return map[int]string{2: testPAN, 3: "200000", 4: fmt.Sprintf("%012d", amount), 11: stan, 14: "2512",
		22: "021", 25: "00", 37: "251121000102", 38: "381602", 41: c.tid, 42: testMID, 49: "156",
		60: "23" + c.batch + "00000", 61: c.batch + origSTAN, 63: "01 "}
}

func (c *terminal) void(origSTAN string, amount int64) (string, *reply) {
	stan := c.nextSTAN()
	return stan, c.mustSend("0200", c.voidFields(stan, origSTAN, amount), true)
}

// reverse sends the 0400 of a sale or void request's fields.
func (c *terminal) reverse(orig map[int]string, reason string) *reply {
	f := maps.Clone(orig)
	delete(f, 35)
	delete(f, 63)
	delete(f, 37)
	delete(f, 38)
	f[39] = reason
	return c.mustSend("0400", f, true)
}

func (c *terminal) settle(t Totals) *reply {
	f48 := fmt.Sprintf("%012d%03d%012d%03d0", t.DebitAmount, t.DebitCount, t.CreditAmount, t.CreditCount) + strings.Repeat("0", 31)
	return c.mustSend("0500", map[int]string{11: c.nextSTAN(), 41: c.tid, 42: testMID, 48: f48, 49: "156",
		60: "00" + c.batch + "20100", 63: "01 "}, false)
}

func (c *terminal) upload(f48, code string) *reply {
	return c.mustSend("0320", map[int]string{11: c.nextSTAN(), 41: c.tid, 42: testMID, 48: f48,
		60: "00" + c.batch + code + "00"}, false)
}

func fieldIDs(f map[int]string) []int { return slices.Sorted(maps.Keys(f)) }

func wantFields(t *testing.T, what string, f map[int]string, want ...int) {
	t.Helper()
	if got := fieldIDs(f); !slices.Equal(got, want) {
		t.Errorf("%s fields = %v, want %v", what, got, want)
	}
}

func TestSignIn(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	r := c.signIn()
	if r.mti != "0810" || r.f[39] != "00" {
		t.Fatalf("sign-in answer %s 39=%q", r.mti, r.f[39])
	}
	wantFields(t, "0810", r.f, 11, 12, 13, 37, 39, 41, 42, 60, 62)
	if r.tpdu != [5]byte{0x60, 0x00, 0x00, 0x00, 0x03} {
		t.Errorf("TPDU %X, want addresses swapped 6000000003", r.tpdu)
	}
	if r.header != reqHeader {
		t.Errorf("header %X", r.header)
	}
	if r.f[60] != "0000000100300" || r.f[11] != "000001" || len(r.f[37]) != 12 {
		t.Errorf("60=%q 11=%q 37=%q", r.f[60], r.f[11], r.f[37])
	}
	// The MAK unwrapped with the TMK MACs a sale the host accepts, and the
	// host's answer verifies with it.
	_, sr, err := c.sale(12345)
	if err != nil {
		t.Fatal(err)
	}
	if sr.f[39] != "00" || !c.macOK(sr) {
		t.Fatalf("sale after sign-in: 39=%q mac ok=%v", sr.f[39], c.macOK(sr))
	}
	// A second sign-in issues different keys; the old MAK no longer works.
	old := c.mak
	c.signIn()
	if c.mak == old {
		t.Errorf("second sign-in issued the same MAK")
	}
	if got := h.Ledger().Terminals[testTID].SignIns; got != 2 {
		t.Errorf("SignIns = %d, want 2", got)
	}
}

func TestSignInKeysFile(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	otherTMK := "00112233445566778899AABBCCDDEEFF"
	if err := os.WriteFile(keys, []byte(`{"87654321":"`+otherTMK+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := startHost(t, Config{KeysFile: keys}) // no default TMK
	c := newTerminal(t, addr)
	r := c.signIn()
	if r.f[39] != "97" {
		t.Fatalf("unknown TID: 39=%q, want 97", r.f[39])
	}
	wantFields(t, "0810 declined", r.f, 11, 12, 13, 37, 39, 41, 42, 60)

	// A TID listed with its own TMK.
	c2 := newTerminal(t, addr)
	c2.tid = "87654321"
	c2.tmk, _ = ParseTMK(otherTMK)
	if r := c2.signIn(); r.f[39] != "00" {
		t.Fatalf("listed TID: 39=%q", r.f[39])
	}

	// The activation service adds the first TID while the host runs.
	if err := os.WriteFile(keys, []byte(`{"87654321":"`+otherTMK+`","`+testTID+`":"`+DefaultTMK+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.signIn(); r.f[39] != "00" {
		t.Fatalf("after adding the TID: 39=%q", r.f[39])
	}
}

func TestSale(t *testing.T) {
	tests := []struct {
		amount int64
		rc     string
	}{
		{12345, "00"}, {5051, "51"}, {100055, "55"}, {96, "96"}, {5000, "00"}, {15, "00"},
	}
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	c.signIn()
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.amount), func(t *testing.T) {
			c.t = t
			stan, r, err := c.sale(tc.amount)
			if err != nil {
				t.Fatal(err)
			}
			if r.mti != "0210" || r.f[39] != tc.rc {
				t.Fatalf("%s 39=%q, want 0210 %s", r.mti, r.f[39], tc.rc)
			}
			if tc.rc == "00" {
				wantFields(t, "approved 0210", r.f, 2, 3, 4, 11, 12, 13, 14, 25, 32, 37, 38, 39, 41, 42, 44, 49, 60, 63, 64)
				if !c.macOK(r) {
					t.Errorf("answer MAC does not verify")
				}
			} else {
				wantFields(t, "declined 0210", r.f, 2, 3, 4, 11, 12, 13, 14, 25, 32, 37, 39, 41, 42, 44, 49, 60, 63)
			}
			if r.f[63] != "CUP" || r.f[2] != testPAN || r.f[4] != fmt.Sprintf("%012d", tc.amount) || r.f[60] != "2200000100000" {
				t.Errorf("echo fields: %v", r.f)
			}
			tx, ok := h.Ledger().Find(testTID, "000001", stan)
			if !ok {
				t.Fatal("sale not in ledger")
			}
			wantState := StateApproved
			if tc.rc != "00" {
				wantState = StateDeclined
			}
			if tx.State != wantState || tx.Response != tc.rc || tx.Amount != tc.amount || tx.RRN != r.f[37] || tx.Auth != r.f[38] {
				t.Errorf("ledger %+v", tx)
			}
			if tx.PAN != "622202*********0123" {
				t.Errorf("ledger PAN %q not masked 6+4", tx.PAN)
			}
		})
	}
}

func TestSaleGoldenFieldSet(t *testing.T) {
	// The host's approved sale answer carries exactly the fields of the
	// golden sale-response.
	var g struct {
		Fields map[string]string `json:"fields"`
	}
	var data []byte
	var err error
	for _, p := range []string{"../testdata/golden/sale-response.json", "../../../shared/testdata/sale-response.json"} {
		if data, err = os.ReadFile(p); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("golden sale-response.json: %v", err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	var want []int
	for k := range g.Fields {
		var id int
		fmt.Sscan(k, &id)
		want = append(want, id)
	}
	slices.Sort(want)
	_, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	c.signIn()
	_, r, err := c.sale(12345)
	if err != nil {
		t.Fatal(err)
	}
	wantFields(t, "sale answer vs golden", r.f, want...)
	if r.f[44] != g.Fields["44"] || r.f[32] != g.Fields["32"] {
		t.Errorf("44=%q 32=%q, golden %q %q", r.f[44], r.f[32], g.Fields["44"], g.Fields["32"])
	}
}

func TestSaleBadMACAndNoSignIn(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	// No sign-in yet: the host has no MAK for the TID.
	_, r, err := c.sale(100)
	if err != nil {
		t.Fatal(err)
	}
	if r.f[39] != "A0" || r.f[64] != "" {
		t.Fatalf("before sign-in: 39=%q 64=%q", r.f[39], r.f[64])
	}
	c.signIn()
	good := c.mak
	c.mak[0] ^= 0x55
	stan, r, err := c.sale(100)
	if err != nil {
		t.Fatal(err)
	}
	if r.f[39] != "A0" || r.f[64] != "" || r.f[38] != "" {
		t.Fatalf("bad MAC: 39=%q 38=%q 64=%q", r.f[39], r.f[38], r.f[64])
	}
	if tx, _ := h.Ledger().Find(testTID, "000001", stan); tx.State != StateDeclined || tx.Response != "A0" {
		t.Errorf("ledger %+v", tx)
	}
	c.mak = good
	if _, r, _ := c.sale(100); r.f[39] != "00" {
		t.Errorf("good MAC after: 39=%q", r.f[39])
	}
	// The same STAN again in the batch: duplicate.
	c.stan--
	if _, r, _ := c.sale(100); r.f[39] != "94" {
		t.Errorf("duplicate STAN: 39=%q, want 94", r.f[39])
	}
}

func TestVoid(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	c.signIn()
	saleSTAN, r, err := c.sale(12345)
	if err != nil || r.f[39] != "00" {
		t.Fatalf("sale: %v %v", err, r)
	}
	declinedSTAN, _, _ := c.sale(5051)

	tests := []struct {
		name   string
		orig   string
		amount int64
		rc     string
	}{
		{"no such original", "999999", 12345, "25"},
		{"declined original", declinedSTAN, 5051, "25"},
		{"amount differs", saleSTAN, 12300, "64"},
		{"ok", saleSTAN, 12345, "00"},
		{"already voided", saleSTAN, 12345, "12"},
	}
	var voidSTAN string
	for _, tc := range tests {
		stan, r := c.void(tc.orig, tc.amount)
		if r.mti != "0210" || r.f[39] != tc.rc {
			t.Errorf("%s: 39=%q, want %s", tc.name, r.f[39], tc.rc)
			continue
		}
		if tc.rc == "00" {
			voidSTAN = stan
			wantFields(t, "void answer", r.f, 2, 3, 4, 11, 12, 13, 14, 25, 32, 37, 38, 39, 41, 42, 44, 49, 60, 63, 64)
			if !c.macOK(r) || r.f[3] != "200000" {
				t.Errorf("void answer: MAC ok %v, 3=%q", c.macOK(r), r.f[3])
			}
		} else if r.f[64] != "" {
			t.Errorf("%s: declined void carries 64", tc.name)
		}
	}
	l := h.Ledger()
	s, _ := l.Find(testTID, "000001", saleSTAN)
	v, _ := l.Find(testTID, "000001", voidSTAN)
	if s.State != StateVoided || s.VoidSTAN != voidSTAN {
		t.Errorf("sale after void: %+v", s)
	}
	if v.Type != TypeVoid || v.State != StateApproved || v.OrigSTAN != saleSTAN {
		t.Errorf("void: %+v", v)
	}
	tot := l.Batch(testTID, "000001").HostTotals()
	if tot != (Totals{DebitAmount: 12345, DebitCount: 1, CreditAmount: 12345, CreditCount: 1}) {
		t.Errorf("totals %+v", tot)
	}

	// A void naming another batch finds no original.
	stan := c.nextSTAN()
	f := c.voidFields(stan, saleSTAN, 12345)
	f[61] = "000002" + saleSTAN
	if r := c.mustSend("0200", f, true); r.f[39] != "25" {
		t.Errorf("other batch: 39=%q, want 25", r.f[39])
	}
}

func TestReversal(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	c.signIn()
	saleSTAN := c.nextSTAN()
	saleF := c.saleFields(saleSTAN, 5000)
	if r := c.mustSend("0200", saleF, true); r.f[39] != "00" {
		t.Fatal("sale not approved")
	}
	rrn := func() string { tx, _ := h.Ledger().Find(testTID, "000001", saleSTAN); return tx.RRN }()

	for i := range 2 { // repeated: idempotent
		r := c.reverse(saleF, "98")
		if r.mti != "0410" || r.f[39] != "00" || r.f[11] != saleSTAN {
			t.Fatalf("reversal %d: %s 39=%q 11=%q", i, r.mti, r.f[39], r.f[11])
		}
		wantFields(t, "0410", r.f, 11, 37, 39, 41, 42, 60, 64)
		if !c.macOK(r) || r.f[37] != rrn {
			t.Errorf("0410: MAC ok %v, 37=%q want %q", c.macOK(r), r.f[37], rrn)
		}
		tx, _ := h.Ledger().Find(testTID, "000001", saleSTAN)
		if tx.State != StateReversed || tx.ReversalReason != "98" {
			t.Errorf("after reversal %d: %+v", i, tx)
		}
	}
	b := h.Ledger().Batch(testTID, "000001")
	if tot := b.HostTotals(); tot != (Totals{}) {
		t.Errorf("reversed sale still in totals: %+v", tot)
	}
	if len(b.Reversals) != 2 || !b.Reversals[0].Undone || b.Reversals[1].Undone {
		t.Errorf("reversal notes %+v", b.Reversals)
	}

	// Reversing a void re-approves its sale.
	s2, _, _ := c.sale(7000)
	v2 := c.nextSTAN()
	voidF := c.voidFields(v2, s2, 7000)
	if r := c.mustSend("0200", voidF, true); r.f[39] != "00" {
		t.Fatalf("void: %q", r.f[39])
	}
	if r := c.reverse(voidF, "A0"); r.f[39] != "00" {
		t.Fatalf("void reversal: %q", r.f[39])
	}
	l := h.Ledger()
	sale2, _ := l.Find(testTID, "000001", s2)
	void2, _ := l.Find(testTID, "000001", v2)
	if sale2.State != StateApproved || sale2.VoidSTAN != "" || void2.State != StateReversed {
		t.Errorf("after void reversal: sale %+v void %+v", sale2, void2)
	}

	// A reversal of a STAN the host never saw is answered 00 all the same.
	ghost := c.saleFields("777777", 100)
	if r := c.reverse(ghost, "98"); r.f[39] != "00" || r.f[11] != "777777" || len(r.f[37]) != 12 {
		t.Errorf("unknown STAN: %v", r.f)
	}

	// The reversal image MACed with the MAK of the previous sign-in is
	// still accepted.
	s3, _, _ := c.sale(300)
	s3F := c.saleFields(s3, 300)
	old := c.mak
	c.signIn()
	cur := c.mak
	c.mak = old
	if r := c.reverse(s3F, "98"); r.f[39] != "00" {
		t.Errorf("reversal under previous MAK: %q", r.f[39])
	}
	c.mak = cur
	if tx, _ := h.Ledger().Find(testTID, "000001", s3); tx.State != StateReversed {
		t.Errorf("sale 3: %+v", tx)
	}
}

func TestSettlementBalanced(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	c.signIn()
	a, _, _ := c.sale(12345)
	c.void(a, 12345)
	c.sale(5000)
	c.sale(5051) // declined: counts nowhere

	r := c.settle(Totals{DebitAmount: 17345, DebitCount: 2, CreditAmount: 12345, CreditCount: 1})
	if r.mti != "0510" || r.f[39] != "00" || r.f[48][30] != '1' {
		t.Fatalf("settlement: %s 39=%q 48=%q", r.mti, r.f[39], r.f[48])
	}
	wantFields(t, "0510", r.f, 11, 12, 13, 15, 37, 39, 41, 42, 48, 60)
	if want := "00000001734500200000001234500110000000000000000000000000000000"; r.f[48] != want {
		t.Errorf("48 = %s, want %s", r.f[48], want)
	}
	end := c.upload("0000", "207")
	if end.mti != "0330" || end.f[39] != "00" || end.f[48] != "0000" {
		t.Fatalf("upload end: %s %v", end.mti, end.f)
	}
	wantFields(t, "0330", end.f, 11, 12, 13, 39, 41, 42, 48, 60)
	l := h.Ledger()
	b := l.Batch(testTID, "000001")
	if !b.Closed || b.Reconciled != ReconciledBalanced || b.Settlement.Flag != "1" {
		t.Errorf("batch %+v", b)
	}
	if l.Terminals[testTID].CurrentBatch != "000002" {
		t.Errorf("current batch %s, want 000002", l.Terminals[testTID].CurrentBatch)
	}
	// A repeated end does not skip a batch.
	c.upload("0000", "207")
	if got := h.Ledger().Terminals[testTID].CurrentBatch; got != "000002" {
		t.Errorf("after repeated end: %s", got)
	}
	// The next sign-in hands out the new batch.
	c.signIn()
	if c.batch != "000002" {
		t.Errorf("sign-in batch %s, want 000002", c.batch)
	}
	// The closed batch's sale can no longer be voided.
	c.batch = "000002"
	stan := c.nextSTAN()
	f := c.voidFields(stan, a, 12345)
	f[61] = "000001" + a
	if r := c.mustSend("0200", f, true); r.f[39] != "25" {
		t.Errorf("void in closed batch: 39=%q, want 25", r.f[39])
	}
}

func TestSettlementNotBalancedUpload(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	c.signIn()
	a, _, _ := c.sale(12345)
	v, _ := c.void(a, 12345)
	b2, _, _ := c.sale(5000)

	// The terminal believes one sale fewer.
	r := c.settle(Totals{DebitAmount: 12345, DebitCount: 1, CreditAmount: 12345, CreditCount: 1})
	if r.f[48][30] != '2' {
		t.Fatalf("flag %c, want 2", r.f[48][30])
	}
	rec := func(stan string, amount int64) string {
		return "00" + stan + "0" + testPAN + fmt.Sprintf("%012d", amount)
	}
	f48 := "03" + rec(a, 12345) + rec(v, 12345) + rec(b2, 5000)
	up := c.upload(f48, "201")
	if up.f[39] != "00" || up.f[48] != f48 {
		t.Fatalf("upload: %v", up.f)
	}
	if bad := c.upload("02"+rec(a, 1), "201"); bad.f[39] != "30" {
		t.Errorf("upload with a wrong count: 39=%q, want 30", bad.f[39])
	}
	if end := c.upload("0003", "202"); end.f[39] != "00" || end.f[48] != "0003" {
		t.Fatalf("end: %v", end.f)
	}
	l := h.Ledger()
	b := l.Batch(testTID, "000001")
	if !b.Closed || b.Reconciled != ReconciledUpload || b.UploadEndCount != 3 || len(b.Uploaded) != 3 {
		t.Fatalf("batch %+v", b)
	}
	if b.Uploaded[2] != (UploadRecord{CardType: "00", STAN: b2, PAN: "622202*********0123", Amount: 5000}) {
		t.Errorf("record %+v", b.Uploaded[2])
	}
	if b.Settlement.Host != (Totals{DebitAmount: 17345, DebitCount: 2, CreditAmount: 12345, CreditCount: 1}) {
		t.Errorf("host totals %+v", b.Settlement.Host)
	}
	if l.Terminals[testTID].CurrentBatch != "000002" {
		t.Errorf("current batch %s", l.Terminals[testTID].CurrentBatch)
	}
}

func TestLedgerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	h, addr := startHost(t, Config{TMK: mustTMK(t), LedgerFile: path})
	c := newTerminal(t, addr)
	c.signIn()
	stan, _, _ := c.sale(4200)
	l, err := ReadLedgerFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tx, ok := l.Find(testTID, "000001", stan)
	if !ok || tx.State != StateApproved || tx.Amount != 4200 {
		t.Fatalf("ledger file: %+v %v", tx, ok)
	}
	mem, _ := h.Ledger().Find(testTID, "000001", stan)
	if mem.RRN != tx.RRN || mem.Auth != tx.Auth {
		t.Errorf("file %+v != memory %+v", tx, mem)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(testPAN)) {
		t.Errorf("full PAN in the ledger file")
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries", len(ents))
	}
}

func TestFaults(t *testing.T) {
	type check func(t *testing.T, c *terminal, h *Host, stan string, r *reply, err error)
	timeoutWritten := func(t *testing.T, c *terminal, h *Host, stan string, r *reply, err error) {
		if !link.RequestWritten(err) || !link.IsTimeout(err) {
			t.Fatalf("err = %v, want a timeout after the write", err)
		}
	}
	approvedInLedger := func(fault string) check {
		return func(t *testing.T, c *terminal, h *Host, stan string, r *reply, err error) {
			tx, ok := h.Ledger().Find(testTID, "000001", stan)
			if !ok || tx.State != StateApproved || !strings.Contains(tx.Fault, fault) {
				t.Errorf("ledger %+v, want approved with fault %s", tx, fault)
			}
		}
	}
	tests := []struct {
		name   string
		faults Faults
		checks []check
	}{
		{"delay", Faults{Delay: 600 * time.Millisecond}, []check{timeoutWritten, approvedInLedger("delay")}},
		{"no answer", Faults{NoAnswer: true}, []check{timeoutWritten, approvedInLedger("no-answer")}},
		{"drop", Faults{Drop: true}, []check{func(t *testing.T, c *terminal, h *Host, stan string, r *reply, err error) {
			if !link.RequestWritten(err) || link.IsTimeout(err) || !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want EOF after the write", err)
			}
		}, approvedInLedger("drop")}},
		{"bad mac", Faults{BadMAC: true}, []check{func(t *testing.T, c *terminal, h *Host, stan string, r *reply, err error) {
			if err != nil || r.f[39] != "00" || r.f[38] == "" || r.f[64] == "" {
				t.Fatalf("err %v answer %v", err, r)
			}
			if c.macOK(r) {
				t.Errorf("bad-mac answer verifies")
			}
		}, approvedInLedger("bad-mac")}},
		{"signin again", Faults{SignInAgain: true}, []check{func(t *testing.T, c *terminal, h *Host, stan string, r *reply, err error) {
			if err != nil || r.header != [6]byte{0x60, 0x31, 0x03, 0x31, 0x00, 0x00} || iso8583.ProcessingRequirement(r.header) != iso8583.SignInAgain {
				t.Fatalf("err %v header %X", err, r.header)
			}
			if r.f[39] != "00" || !c.macOK(r) {
				t.Errorf("answer 39=%q MAC ok %v", r.f[39], c.macOK(r))
			}
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, addr := startHost(t, Config{TMK: mustTMK(t)})
			c := newTerminal(t, addr)
			c.client.Timeout = 300 * time.Millisecond
			c.signIn()
			h.SetFaults(tc.faults)
			stan, r, err := c.sale(100)
			for _, ch := range tc.checks {
				ch(t, c, h, stan, r, err)
			}
			// Sign-in is not a financial message: bad-mac and signin-again
			// leave it alone.
			if tc.faults.BadMAC || tc.faults.SignInAgain {
				if r := c.signIn(); r.f[39] != "00" || r.header != reqHeader {
					t.Errorf("sign-in under %s: 39=%q header %X", tc.name, r.f[39], r.header)
				}
			}
			h.SetFaults(Faults{})
			if _, r, err := c.sale(100); err != nil || r.f[39] != "00" || !c.macOK(r) || r.header != reqHeader {
				t.Errorf("healed host: err %v", err)
			}
		})
	}
}

func TestFaultNotBalanced(t *testing.T) {
	_, addr := startHost(t, Config{TMK: mustTMK(t), Faults: Faults{NotBalanced: true}})
	c := newTerminal(t, addr)
	c.signIn()
	c.sale(100)
	r := c.settle(Totals{DebitAmount: 100, DebitCount: 1})
	if r.f[48][30] != '2' {
		t.Fatalf("flag %c, want 2 (forced)", r.f[48][30])
	}
}

func TestFaultScopeAndCount(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	c := newTerminal(t, addr)
	c.client.Timeout = 300 * time.Millisecond
	c.signIn()
	// Only voids, only once.
	h.SetFaults(Faults{NoAnswer: true, On: []string{"0200:200000"}, Count: 1})
	s, r, err := c.sale(100)
	if err != nil || r.f[39] != "00" {
		t.Fatalf("sale outside the scope: %v", err)
	}
	if r := c.signIn(); r.f[39] != "00" {
		t.Fatal("sign-in outside the scope")
	}
	c.stan++
	_, err = c.send("0200", c.voidFields(fmt.Sprintf("%06d", c.stan), s, 100), true)
	if !link.RequestWritten(err) {
		t.Fatalf("void in scope: err = %v, want no answer", err)
	}
	if f := h.Faults(); f.active() {
		t.Errorf("faults not healed after count: %+v", f)
	}
	s2, _, _ := c.sale(200)
	if _, r := c.void(s2, 200); r.f[39] != "00" {
		t.Errorf("void after healing: %q", r.f[39])
	}
}

func TestControlAPI(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	srv := httptest.NewServer(h.ControlHandler())
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/faults", "application/json", strings.NewReader(`{"delay":"1.5s","bad_mac":true,"on":["0200"],"count":2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /faults: %s", resp.Status)
	}
	f := h.Faults()
	if f.Delay != 1500*time.Millisecond || !f.BadMAC || f.Count != 2 || !slices.Equal(f.On, []string{"0200"}) {
		t.Errorf("faults %+v", f)
	}
	for _, bad := range []string{`{"dealy":"1s"}`, `{"delay":"soon"}`, `{"on":["200"]}`, `not json`} {
		resp, err := http.Post(srv.URL+"/faults", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %s, want 400", bad, resp.Status)
		}
	}
	resp, err = http.Get(srv.URL + "/faults")
	if err != nil {
		t.Fatal(err)
	}
	var got Faults
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Delay != f.Delay || !got.BadMAC {
		t.Errorf("GET /faults %+v", got)
	}
	h.SetFaults(Faults{})

	c := newTerminal(t, addr)
	c.signIn()
	stan, _, _ := c.sale(999)
	resp, err = http.Get(srv.URL + "/ledger")
	if err != nil {
		t.Fatal(err)
	}
	var l Ledger
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tx, ok := l.Find(testTID, "000001", stan); !ok || tx.Amount != 999 {
		t.Errorf("GET /ledger: %+v", tx)
	}
}

func TestConcurrentTerminals(t *testing.T) {
	h, addr := startHost(t, Config{TMK: mustTMK(t)})
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			c := newTerminal(t, addr)
			c.tid = fmt.Sprintf("T%07d", i)
			r, err := c.send("0800", map[int]string{11: "000001", 41: c.tid, 42: testMID, 60: "0000000100300", 63: "01 "}, false)
			if err != nil || r.f[39] != "00" {
				errs <- fmt.Errorf("sign-in %s: %v", c.tid, err)
				return
			}
			f62, _ := hex.DecodeString(r.f[62])
			_, c.mak, err = mac.UnwrapWorkingKeys(c.tmk, f62)
			if err != nil {
				errs <- err
				return
			}
			c.stan = 1
			_, r, err = c.sale(int64(100 + i))
			if err == nil && r.f[39] != "00" {
				err = fmt.Errorf("39=%s", r.f[39])
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := len(h.Ledger().Terminals); got != n {
		t.Errorf("%d terminals in ledger, want %d", got, n)
	}
}

func TestUndecodableRequestHangsUp(t *testing.T) {
	_, addr := startHost(t, Config{TMK: mustTMK(t)})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A valid length and TPDU/header but garbage where the MTI is.
	bad := append([]byte{0x00, 0x15}, bytes.Repeat([]byte{0xFF}, 0x15)...)
	conn.Write(bad)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := conn.Read(make([]byte, 10)); err == nil || n != 0 {
		t.Errorf("host answered garbage: n=%d err=%v", n, err)
	}
}

func TestDeclineCode(t *testing.T) {
	tests := map[int64]string{51: "51", 12351: "51", 55: "55", 96: "96", 100: "00", 12345: "00", 5150: "00"}
	for amount, want := range tests {
		if got := DeclineCode(amount); got != want {
			t.Errorf("DeclineCode(%d) = %s, want %s", amount, got, want)
		}
	}
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	f := Faults{Delay: 2 * time.Second, NoAnswer: true, Drop: true, BadMAC: true, NotBalanced: true, SignInAgain: true, On: []string{"0200", "0400:000000"}, Count: 3}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var g Faults
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if g.String() != f.String() || !slices.Equal(g.On, f.On) || g.Count != 3 {
		t.Errorf("round trip %s -> %+v", b, g)
	}
}

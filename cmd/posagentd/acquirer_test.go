package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal"
)

// acqTestMerchant is a merchant of the simulator (any TID signs in under
// hostsim.DefaultTMK).
func acqTestMerchant(addr string) terminal.Merchant {
	return terminal.Merchant{TID: "87654321", MID: "123456789012345", AcquirerAddr: addr, TPDU: "6000030000"}
}

// newTestSE is a software secure element holding the simulator's TMK.
func newTestSE(t *testing.T, tmkHex string) *sesim.SE {
	t.Helper()
	se, err := sesim.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tmk, _ := hex.DecodeString(tmkHex)
	if err := se.InstallTMK(tmk, mac.TMKKCV(tmk)); err != nil {
		t.Fatal(err)
	}
	return se
}

func startHostsim(t *testing.T) (*hostsim.Host, string) {
	t.Helper()
	tmk, _ := hex.DecodeString(hostsim.DefaultTMK)
	host := hostsim.New(hostsim.Config{TMK: tmk, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go host.Serve(ln)
	t.Cleanup(func() { host.Close() })
	return host, ln.Addr().String()
}

func nextReply(t *testing.T, replies <-chan terminal.Event) terminal.AcquirerReply {
	t.Helper()
	select {
	case ev := <-replies:
		r, ok := ev.(terminal.AcquirerReply)
		if !ok {
			t.Fatalf("event %T, want AcquirerReply", ev)
		}
		return r
	case <-time.After(waitTimeout):
		t.Fatal("no reply from the acquirer worker")
	}
	return terminal.AcquirerReply{}
}

// TestAcquirerWorkerSignIn: the worker signs in against the simulator over
// TCP and installs the working keys in the secure element; under another
// TMK the keys do not install and the core learns it in KeysErr.
func TestAcquirerWorkerSignIn(t *testing.T) {
	_, addr := startHostsim(t)
	for _, tc := range []struct {
		name    string
		tmk     string
		keysErr bool
	}{
		{"the host's TMK", hostsim.DefaultTMK, false},
		{"another TMK", "0123456789ABCDEFFEDCBA9876543210", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			se := newTestSE(t, tc.tmk)
			replies := make(chan terminal.Event, 1)
			w := startAcquirer(se, 5*time.Second, slog.New(slog.DiscardHandler), replies)
			defer w.stop()
			if !w.submit(terminal.Request{ID: 7, Kind: terminal.MsgSignIn, STAN: 1, Batch: 1, Merchant: acqTestMerchant(addr)}) {
				t.Fatal("submit refused")
			}
			r := nextReply(t, replies)
			if r.ID != 7 || r.Err != nil || !r.Resp.Approved() || r.Resp.Undecodable {
				t.Fatalf("reply %+v, want an approved sign-in with ID 7", r)
			}
			if got := r.Resp.KeysErr != nil; got != tc.keysErr {
				t.Errorf("KeysErr %v, want an error: %v", r.Resp.KeysErr, tc.keysErr)
			}
			if se.HasKey(hal.MAK) == tc.keysErr {
				t.Errorf("MAK installed %v, want %v", se.HasKey(hal.MAK), !tc.keysErr)
			}
			if len(r.Resp.LocalDate) != 4 || len(r.Resp.LocalTime) != 6 {
				t.Errorf("local date %q time %q, want MMDD and hhmmss", r.Resp.LocalDate, r.Resp.LocalTime)
			}
		})
	}
}

// slowHost answers every request with a frame that is not one, after
// hold, and records how many exchanges it ever had open at once.
type slowHost struct {
	hold          time.Duration
	open, maxOpen atomic.Int32
	seen          chan struct{} // a request was read
}

func (h *slowHost) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quit := make(chan struct{})
	t.Cleanup(func() { ln.Close(); close(quit) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, link.MaxFrame)
				if _, err := link.ReadFrame(c, buf); err != nil {
					return
				}
				n := h.open.Add(1)
				for m := h.maxOpen.Load(); n > m && !h.maxOpen.CompareAndSwap(m, n); m = h.maxOpen.Load() {
				}
				h.seen <- struct{}{}
				select {
				case <-time.After(h.hold):
				case <-quit:
				}
				h.open.Add(-1)
				c.Write([]byte{0, 0})
			}()
		}
	}()
	return ln.Addr().String()
}

// TestAcquirerWorkerOneAtATime: requests queued together (the core's next
// after one it abandoned at a tamper) run one after the other on the one
// worker, never side by side, and are answered in order.
func TestAcquirerWorkerOneAtATime(t *testing.T) {
	h := &slowHost{hold: 50 * time.Millisecond, seen: make(chan struct{}, 8)}
	addr := h.serve(t)
	replies := make(chan terminal.Event, 4)
	w := startAcquirer(newTestSE(t, hostsim.DefaultTMK), 5*time.Second, slog.New(slog.DiscardHandler), replies)
	defer w.stop()
	for id := uint64(1); id <= 3; id++ {
		if !w.submit(terminal.Request{ID: id, Kind: terminal.MsgSignIn, STAN: terminal.STAN(id), Batch: 1, Merchant: acqTestMerchant(addr)}) {
			t.Fatalf("submit %d refused", id)
		}
	}
	for id := uint64(1); id <= 3; id++ {
		r := nextReply(t, replies)
		if r.ID != id || r.Err != nil || !r.Resp.Undecodable {
			t.Errorf("reply %+v, want ID %d, an undecodable answer", r, id)
		}
	}
	if m := h.maxOpen.Load(); m != 1 {
		t.Errorf("the host had %d exchanges open at once, want 1", m)
	}
}

// TestAcquirerWorkerQueueFull: a request the worker cannot queue is
// refused at once (the loop never blocks on it).
func TestAcquirerWorkerQueueFull(t *testing.T) {
	h := &slowHost{hold: time.Hour, seen: make(chan struct{}, 8)}
	addr := h.serve(t)
	w := startAcquirer(newTestSE(t, hostsim.DefaultTMK), time.Hour, slog.New(slog.DiscardHandler), make(chan terminal.Event, 1))
	defer w.stop()
	q := terminal.Request{Kind: terminal.MsgSignIn, STAN: 1, Batch: 1, Merchant: acqTestMerchant(addr)}
	if !w.submit(q) {
		t.Fatal("first submit refused")
	}
	<-h.seen // the worker is in that exchange; the queue is empty
	for i := range acquirerQueue {
		if !w.submit(q) {
			t.Fatalf("submit %d refused with room in the queue", i+2)
		}
	}
	if w.submit(q) {
		t.Error("submit accepted with the queue full")
	}
	var stopped *acquirerWorker
	if stopped.submit(q) {
		t.Error("a stopped (nil) worker accepted a request")
	}
}

// TestAcquirerWorkerStop: stop cuts the exchange in flight short and
// returns once the worker has ended; nothing is delivered afterwards.
func TestAcquirerWorkerStop(t *testing.T) {
	h := &slowHost{hold: time.Hour, seen: make(chan struct{}, 1)}
	addr := h.serve(t)
	replies := make(chan terminal.Event, 1)
	w := startAcquirer(newTestSE(t, hostsim.DefaultTMK), time.Hour, slog.New(slog.DiscardHandler), replies)
	w.submit(terminal.Request{Kind: terminal.MsgSignIn, STAN: 1, Batch: 1, Merchant: acqTestMerchant(addr)})
	<-h.seen
	w.stop() // with an hour-long timeout: returns only if the exchange is cancelled
	select {
	case <-w.done:
	default:
		t.Fatal("stop returned before the worker ended")
	}
	select {
	case ev := <-replies:
		t.Errorf("event %+v delivered by a stopped worker", ev)
	default:
	}
	w.stop() // twice is harmless
}

// notFrameProxy stands between the terminal and the simulator. It forwards
// every exchange, except that the answer to the first 0200 is replaced by
// prefix (a length value no frame has) and the start of a body, the
// connection then held open until the terminal closes it.
type notFrameProxy struct {
	host   string
	prefix []byte
	done   atomic.Bool
	wg     sync.WaitGroup
}

func (p *notFrameProxy) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				if err := p.exchange(c); err != nil {
					t.Logf("proxy: %v", err)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func (p *notFrameProxy) exchange(c net.Conn) error {
	req := make([]byte, link.MaxFrame)
	n, err := link.ReadFrame(c, req)
	if err != nil {
		return err
	}
	h, err := net.Dial("tcp", p.host)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := link.WriteFrame(h, req[:n]); err != nil {
		return err
	}
	resp := make([]byte, link.MaxFrame)
	m, err := link.ReadFrame(h, resp)
	if err != nil {
		return err
	}
	// The MTI follows length, TPDU and header: bytes 13 and 14.
	if bytes.Equal(req[13:15], []byte{0x02, 0x00}) && p.done.CompareAndSwap(false, true) {
		c.Write(p.prefix)
		c.Write(bytes.Repeat([]byte{0x30}, 100))
		io.Copy(io.Discard, c)
		return nil
	}
	_, err = c.Write(resp[:m])
	return err
}

// TestAcquirerAnswerNotAFrame (issue 10): an approved sale whose answer
// comes back with a zero length value, or one over 2,048, is refused by the
// link before its body and leaves the reversal owed with reason 06 (an
// answer that does not decode, acquirer.md §Messages), not 98: the
// terminal shows BAD RESPONSE and the simulator, which approved the sale,
// records it reversed by a 0400 with 39 = 06. Real TCP, the daemon's loop
// and worker in process.
func TestAcquirerAnswerNotAFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix []byte
	}{
		{"zero length", []byte{0x00, 0x00}},
		{"length 2049", []byte{0x08, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, hostAddr := startHostsim(t)
			proxy := &notFrameProxy{host: hostAddr, prefix: tc.prefix}
			p := startInProcess(t, proxy.serve(t))
			p.keys("1")
			p.waitFor("AMOUNT")
			p.keys("4200\r")
			p.waitFor("SWIPE CARD")
			p.fakes.CardReader.Swipe(track2A)
			p.waitFor("BAD RESPONSE")
			deadline := time.Now().Add(waitTimeout)
			for {
				sale, err := onlySale(host.Ledger())
				if err == nil && sale.State == hostsim.StateReversed {
					if sale.ReversalReason != terminal.ReasonOther {
						t.Errorf("reversed with 39 = %q, want 06", sale.ReversalReason)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the sale was not reversed at the host: %v %+v", err, sale)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !proxy.done.Load() {
				t.Error("the proxy never replaced an answer")
			}
		})
	}
}

func onlySale(l hostsim.Ledger) (hostsim.Txn, error) {
	ht := l.Terminals["87654321"]
	if ht == nil || len(ht.Batches) == 0 {
		return hostsim.Txn{}, errors.New("the host saw no batch")
	}
	var sales []hostsim.Txn
	for _, b := range ht.Batches {
		for _, x := range b.Transactions {
			if x.Type == hostsim.TypeSale {
				sales = append(sales, x)
			}
		}
	}
	if len(sales) != 1 {
		return hostsim.Txn{}, fmt.Errorf("the host saw %d sales, want 1", len(sales))
	}
	return sales[0], nil
}

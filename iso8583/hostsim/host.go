// Package hostsim is an acquirer host simulator for the profile of
// spec/acquirer.md, built on the moov-io reference codec (reference.Pack
// / UnpackReference), never on the terminal's fast path, so the two sides of a
// test do not share a codec.
//
// It signs terminals in (working keys under the TMK), approves or declines
// sales by amount, voids, reversals, settlement and batch upload, keeps a
// per-TID, per-batch ledger tests can read, and injects faults (delay, no
// answer, dropped connection, bad MAC, not balanced, sign in again).
//
// Decline rule for sales: the last two digits (fen) of the amount decide:
// 51 → 51 insufficient funds, 55 → 55 wrong PIN, 96 → 96 switch fault;
// any other amount is approved (00).
package hostsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/iso8583/reference"
)

// DefaultTMK is the TMK of the golden testdata, the simulator's default.
const DefaultTMK = "3F7A1C9E5B2D4086A1E3C57B92D40F68"

// Config configures a Host. The zero value is usable: no default TMK (every
// sign-in answers 97 unless KeysFile names the TID), no ledger file.
type Config struct {
	// TMK is the master key of any terminal not in KeysFile (16 bytes), or
	// nil for none.
	TMK []byte
	// KeysFile is a JSON object TID -> TMK hex, re-read at every sign-in so
	// an activation service can add terminals while the host runs.
	KeysFile string
	// LedgerFile, when set, is rewritten atomically as JSON after every
	// change of the ledger.
	LedgerFile string
	// Faults in effect from the start.
	Faults Faults
	// AcquirerID is field 32 and the acquirer half of 44 (default 48020000);
	// IssuerID the issuer half of 44 (default 01020000).
	AcquirerID, IssuerID string
	Logger               *slog.Logger     // default slog.Default()
	Now                  func() time.Time // default time.Now
	Rand                 io.Reader        // working keys, default crypto/rand
}

// Host is a running simulator. Its methods are safe for concurrent use.
type Host struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	ledger Ledger
	keys   map[string]*termKeys // TID -> working keys issued
	faults Faults
	rrnSeq int
	auth   int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	connMu sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
}

type termKeys struct {
	mak, prevMAK       [8]byte
	hasMAK, hasPrevMAK bool
}

// New returns a Host; call Serve to accept connections.
func New(cfg Config) *Host {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.AcquirerID == "" {
		cfg.AcquirerID = "48020000"
	}
	if cfg.IssuerID == "" {
		cfg.IssuerID = "01020000"
	}
	if cfg.TMK != nil && len(cfg.TMK) != 16 {
		cfg.Logger.Error("default TMK ignored: must be 16 bytes", "len", len(cfg.TMK))
		cfg.TMK = nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{
		cfg:    cfg,
		log:    cfg.Logger,
		ledger: Ledger{Terminals: map[string]*Terminal{}},
		keys:   map[string]*termKeys{},
		faults: cfg.Faults,
		auth:   int(cfg.Now().UnixNano() % 900000),
		ctx:    ctx,
		cancel: cancel,
		lns:    map[net.Listener]struct{}{},
		conns:  map[net.Conn]struct{}{},
	}
}

// ParseTMK decodes a 32-hex-digit TMK.
func ParseTMK(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return nil, fmt.Errorf("TMK %q: want 32 hex digits", s)
	}
	return b, nil
}

// Ledger returns a deep copy of the ledger.
func (h *Host) Ledger() Ledger {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ledger.clone()
}

// SetFaults replaces the faults in effect.
func (h *Host) SetFaults(f Faults) {
	h.mu.Lock()
	h.faults = f
	h.mu.Unlock()
	h.log.Info("faults set", "faults", f.String(), "on", f.On, "count", f.Count)
}

// Faults returns the faults in effect (Count is what is left).
func (h *Host) Faults() Faults {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults
}

// Serve accepts connections on ln until ln fails or Close is called; it
// returns nil after Close. Every connection carries any number of
// request/response exchanges, one at a time.
func (h *Host) Serve(ln net.Listener) error {
	h.connMu.Lock()
	if h.closed {
		h.connMu.Unlock()
		ln.Close()
		return errors.New("hostsim: serve after close")
	}
	h.lns[ln] = struct{}{}
	h.connMu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if h.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("hostsim accept: %w", err)
		}
		h.connMu.Lock()
		if h.closed {
			h.connMu.Unlock()
			c.Close()
			return nil
		}
		h.conns[c] = struct{}{}
		h.wg.Add(1)
		h.connMu.Unlock()
		go func() {
			defer h.wg.Done()
			defer func() {
				h.connMu.Lock()
				delete(h.conns, c)
				h.connMu.Unlock()
				c.Close()
			}()
			h.serveConn(c)
		}()
	}
}

// Close stops every listener and connection and waits for the handlers.
func (h *Host) Close() error {
	h.connMu.Lock()
	h.closed = true
	h.cancel()
	for ln := range h.lns {
		ln.Close()
	}
	for c := range h.conns {
		c.Close()
	}
	h.connMu.Unlock()
	h.wg.Wait()
	return nil
}

func (h *Host) serveConn(c net.Conn) {
	buf := make([]byte, link.MaxFrame)
	log := h.log.With("remote", c.RemoteAddr().String())
	for {
		n, err := link.ReadFrame(c, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && h.ctx.Err() == nil {
				log.Warn("read frame", "err", err)
			}
			return
		}
		resp, fl := h.handleFrame(buf[:n], log)
		if fl.Delay > 0 {
			t := time.NewTimer(fl.Delay)
			select {
			case <-t.C:
			case <-h.ctx.Done():
				t.Stop()
				return
			}
		}
		switch {
		case resp == nil:
			return // undecodable request: hang up
		case fl.NoAnswer:
			log.Info("fault no-answer: holding the connection")
			// Hold until the client gives up (or the host closes).
			io.Copy(io.Discard, c)
			return
		case fl.Drop:
			log.Info("fault drop: closing the connection")
			return
		}
		if err := link.WriteFrame(c, resp); err != nil {
			log.Warn("write answer", "err", err)
			return
		}
	}
}

// handleFrame decodes and processes one request; it returns the answer frame
// (nil: hang up) and the faults to apply to it.
func (h *Host) handleFrame(frame []byte, log *slog.Logger) ([]byte, Faults) {
	tpdu, _, mti, f, err := reference.Unpack(frame)
	if err != nil {
		log.Warn("undecodable request", "err", err)
		return nil, Faults{}
	}
	req := &request{tpdu: tpdu, mti: mti, f: f, frame: frame}
	log = log.With("mti", mti, "tid", f[41], "stan", f[11])

	h.mu.Lock()
	fl := h.takeFaults(mti, f[3])
	rsp := h.dispatch(req, fl, log)
	changed := rsp.changed
	var ledger []byte
	if changed && h.cfg.LedgerFile != "" {
		ledger, err = marshalLedger(h.ledger)
		if err != nil {
			log.Error("marshal ledger", "err", err)
		}
	}
	if ledger != nil {
		// Written under the lock so files land in the order of the changes.
		if err := writeFileAtomic(h.cfg.LedgerFile, ledger); err != nil {
			log.Error("ledger file", "err", err)
		}
	}
	h.mu.Unlock()

	out, err := h.pack(req, rsp, fl)
	if err != nil {
		log.Error("pack answer", "err", err)
		return nil, Faults{}
	}
	log.Info("answer", "resp_mti", rsp.mti, "rc", rsp.f[39], "faults", fl.String())
	return out, fl
}

// takeFaults returns the faults acting on this request and counts it
// against Faults.Count. Called with h.mu held.
func (h *Host) takeFaults(mti, proc string) Faults {
	fl := h.faults.forRequest(mti, proc)
	if !fl.active() {
		return Faults{}
	}
	if h.faults.Count > 0 {
		h.faults.Count--
		if h.faults.Count == 0 {
			h.log.Info("faults healed after their count", "faults", h.faults.String())
			h.faults = Faults{}
		}
	}
	return fl
}

type request struct {
	tpdu  [5]byte
	mti   string
	f     map[int]string
	frame []byte
}

type response struct {
	mti     string
	f       map[int]string
	mac     *[8]byte // MAK for field 64, nil: no 64
	changed bool     // the ledger changed
}

func (h *Host) pack(req *request, rsp *response, fl Faults) ([]byte, error) {
	// The host answers with the TPDU addresses swapped (acquirer.md §Frame).
	tpdu := [5]byte{req.tpdu[0], req.tpdu[3], req.tpdu[4], req.tpdu[1], req.tpdu[2]}
	header := [6]byte{0x60, 0x31, 0x00, 0x31, 0x00, 0x00}
	if fl.SignInAgain {
		header[2] |= iso8583.SignInAgain // CUP processing requirement nibble
	}
	if rsp.mac != nil {
		rsp.f[64] = "0000000000000000"
	}
	frame, err := reference.Pack(tpdu, header, rsp.mti, rsp.f)
	if err != nil {
		return nil, err
	}
	if rsp.mac == nil {
		return frame, nil
	}
	block, err := iso8583.MACBlock(frame)
	if err != nil {
		return nil, err
	}
	key := *rsp.mac
	if fl.BadMAC {
		key[0] ^= 0xFF // a MAC under another key: well-formed, wrong
	}
	m, err := macSum(key[:], block)
	if err != nil {
		return nil, err
	}
	if err := iso8583.PutMAC(frame, m[:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// readKeysFile reads the TID -> TMK map; a missing file is an empty map.
func readKeysFile(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	out := make(map[string][]byte, len(m))
	for tid, k := range m {
		tmk, err := ParseTMK(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("keys file %s: TID %q: %w", path, tid, err)
		}
		out[tid] = tmk
	}
	return out, nil
}

// tmkFor returns the TMK of a TID: KeysFile first, then the default.
func (h *Host) tmkFor(tid string, log *slog.Logger) []byte {
	if h.cfg.KeysFile != "" {
		keys, err := readKeysFile(h.cfg.KeysFile)
		if err != nil {
			log.Error("read keys file", "err", err)
		}
		if k, ok := keys[tid]; ok {
			return k
		}
	}
	return h.cfg.TMK
}

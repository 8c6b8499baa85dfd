// Package simterm is a fleet of light in-process terminals for HQ's tests
// and benchmarks: each speaks spec/remote.md on the wire exactly (topics,
// signed envelopes with its own device key, the command check table in
// its order through terminal/remote, replayed final acks, status, the
// activation request and provision with a sealed TMK), but has no menu, no
// stores and no ISO 8583: an unbind "settles" through a Settler, an update
// downloads, installs and reboots in simulated time (UpdateSim). Thousands
// fit in one test process where full posagentd agents would not.
package simterm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/nacl/box"

	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal/remote"
)

// Settler settles a terminal's open batch with the acquirer.
type Settler interface {
	Settle(serial string, count int) error
}

// HQKey is a key terminals trust.
type HQKey struct {
	Pub  ed25519.PublicKey
	Root bool
}

// Options shape a fleet.
type Options struct {
	Broker  string
	Serials []string
	PerConn int              // terminals per MQTT connection; 1 (default) = client id pos-<serial>, username = serial
	HQKeys  map[string]HQKey // kid -> key
	Policy  map[string]int   // type -> signatures needed (default 1)
	Active  bool             // start active (else unactivated)
	Batch   int              // open-batch transactions of each active terminal
	Settler Settler          // nil: settlement always succeeds at once
	Version string           // the version every terminal runs at first ("simterm" when empty)
	Update  UpdateSim        // how the terminals answer update commands
	Log     *slog.Logger
	Now     func() time.Time
}

// Terminal is one light terminal.
type Terminal struct {
	Serial string
	Priv   ed25519.PrivateKey
	XPub   *[32]byte
	xPriv  *[32]byte
	fleet  *Fleet
	conn   paho.Client

	mu        sync.Mutex
	state     string
	batch     int
	tid       string
	pending   string // activation request id waiting for provision
	version   string // running
	updating  string // id of the update command in progress
	updates   int    // update commands accepted
	seen      map[string]seenCmd
	executing map[string]bool
	provCh    chan string // provision command ids, for Activate
}

type seenCmd struct {
	sum   [32]byte
	final []byte // the final ack envelope
}

// Fleet is many light terminals.
type Fleet struct {
	opts  Options
	Terms map[string]*Terminal
	conns []paho.Client

	// Counters of what the terminals saw.
	Unverified atomic.Int64 // envelopes that did not verify (no ack, as remote.md says)
	Acks       atomic.Int64
	Commands   atomic.Int64

	updating, updatePeak, updatesBegun atomic.Int64
}

// Registry is factory-init's JSON lines for every terminal.
func (f *Fleet) Registry() []byte {
	var b bytes.Buffer
	for _, s := range f.opts.Serials {
		t := f.Terms[s]
		line, _ := json.Marshal(map[string]any{"serial": s, "ed25519_pub": t.Priv.Public(), "x25519_pub": t.XPub[:]})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// New makes the terminals (keys) without connecting them.
func New(o Options) (*Fleet, error) {
	if o.PerConn <= 0 {
		o.PerConn = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "simterm"
	}
	f := &Fleet{opts: o, Terms: map[string]*Terminal{}}
	for _, s := range o.Serials {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		xpub, xpriv, err := box.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		t := &Terminal{Serial: s, Priv: priv, XPub: xpub, xPriv: xpriv, fleet: f, state: "unactivated",
			seen: map[string]seenCmd{}, executing: map[string]bool{}, provCh: make(chan string, 4), version: o.Version}
		if o.Active {
			t.state, t.batch, t.tid = "active", o.Batch, "T"+s
		}
		f.Terms[s] = t
	}
	return f, nil
}

// Connect connects every terminal (subscribed to its cmd topic at QoS 1,
// persistent session) and publishes each status.
func (f *Fleet) Connect() error {
	serials := f.opts.Serials
	for i := 0; i < len(serials); i += f.opts.PerConn {
		group := serials[i:min(i+f.opts.PerConn, len(serials))]
		id, user := fmt.Sprintf("simfleet-%s", group[0]), "simfleet"
		if f.opts.PerConn == 1 {
			id, user = remote.ClientID(group[0]), group[0]
		}
		handler := func(_ paho.Client, m paho.Message) {
			if m.Retained() {
				return // commands are never retained (remote.md)
			}
			serial, kind, ok := remote.ParseTopic(m.Topic())
			if t := f.Terms[serial]; ok && kind == remote.KindCmd && t != nil {
				t.onCommand(m.Payload())
			}
		}
		o := paho.NewClientOptions().AddBroker(f.opts.Broker).SetClientID(id).SetUsername(user).
			SetCleanSession(false).SetOrderMatters(false).SetAutoReconnect(true).SetConnectRetry(false).
			SetConnectTimeout(20 * time.Second).SetKeepAlive(60 * time.Second).SetDefaultPublishHandler(handler).
			SetMaxResumePubInFlight(1000)
		if len(group) == 1 {
			o.SetWill(remote.StatusTopic(group[0]), string(remote.OfflineWill(group[0])), 1, true)
		}
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			return fmt.Errorf("connect %s: %v", id, tok.Error())
		}
		subs := map[string]byte{}
		for _, s := range group {
			subs[remote.CmdTopic(s)] = 1
			f.Terms[s].conn = c
		}
		if tok := c.SubscribeMultiple(subs, handler); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			return fmt.Errorf("subscribe %s: %v", id, tok.Error())
		}
		f.conns = append(f.conns, c)
		for _, s := range group {
			f.Terms[s].publishStatus(true)
		}
	}
	return nil
}

// Close disconnects every terminal.
func (f *Fleet) Close() {
	for _, c := range f.conns {
		c.Disconnect(100)
	}
}

func (t *Terminal) publish(topic string, retained bool, payload []byte) {
	tok := t.conn.Publish(topic, 1, retained, payload)
	go func() {
		if tok.WaitTimeout(30*time.Second) && tok.Error() != nil {
			t.fleet.opts.Log.Warn("simterm publish", "serial", t.Serial, "err", tok.Error())
		}
	}()
}

// publishStatus publishes the retained status; online false is what a
// terminal publishes as it stops cleanly (a reboot).
func (t *Terminal) publishStatus(online bool) {
	free := int64(1024)
	t.mu.Lock()
	st := remote.Status{Serial: t.Serial, Online: online, State: t.state, TID: t.tid, BatchNo: "000001", BatchCount: t.batch,
		Version: t.version, At: t.fleet.opts.Now().UTC(), Clock: "synced", DiskFreeKiB: &free}
	t.mu.Unlock()
	b, _ := json.Marshal(st)
	t.publish(remote.StatusTopic(t.Serial), true, b)
}

// ack signs and publishes an ack; a final one is recorded for replays.
func (t *Terminal) ack(c remote.Command, payloadSum [32]byte, state, reason string, result any) {
	var res json.RawMessage
	if result != nil {
		res, _ = json.Marshal(result)
	}
	a := remote.Ack{V: 1, CmdID: c.ID, Serial: t.Serial, State: state, Reason: reason, At: t.fleet.opts.Now().UTC(), Result: res}
	env, err := remote.SealAck(t.Priv, a)
	if err != nil {
		return
	}
	if a.Final() && c.ID != "" {
		t.mu.Lock()
		t.seen[c.ID] = seenCmd{sum: payloadSum, final: env}
		delete(t.executing, c.ID)
		t.mu.Unlock()
	}
	t.fleet.Acks.Add(1)
	t.publish(remote.AckTopic(t.Serial), false, env)
}

func (f *Fleet) keys() (map[string]ed25519.PublicKey, map[string]bool) {
	keys := map[string]ed25519.PublicKey{}
	roots := map[string]bool{}
	for kid, k := range f.opts.HQKeys {
		keys[kid] = k.Pub
		roots[kid] = k.Root
	}
	return keys, roots
}

func (t *Terminal) onCommand(raw []byte) {
	f := t.fleet
	keys, roots := f.keys()
	env, kids, err := remote.OpenSigners(raw, keys)
	if err != nil {
		f.Unverified.Add(1)
		return // no ack for what does not verify
	}
	f.Commands.Add(1)
	sum := sha256.Sum256(env.Payload)
	now := f.opts.Now()
	t.mu.Lock()
	if t.executing[idOf(env.Payload)] {
		t.mu.Unlock()
		return // a re-send of a command being executed: it ends with its final ack
	}
	seen := func(id string) ([32]byte, bool) {
		s, ok := t.seen[id]
		return s.sum, ok
	}
	c, v := remote.CheckCommand(env.Payload, t.Serial, now, seen)
	if v.Resend {
		final := t.seen[c.ID].final
		t.mu.Unlock()
		t.publish(remote.AckTopic(t.Serial), false, final)
		return
	}
	t.mu.Unlock()
	if v.Reason != "" {
		t.ack(c, sum, remote.AckRejected, v.Reason, nil)
		return
	}
	need := max(f.opts.Policy[string(c.Type)], 1)
	root := false
	for _, k := range kids {
		root = root || roots[k]
	}
	if len(kids) < need {
		t.ack(c, sum, remote.AckRejected, "insufficient-signatures", nil)
		return
	}
	t.mu.Lock()
	state, pending := t.state, t.pending
	t.mu.Unlock()
	var args struct {
		Activation string `json:"activation"`
	}
	_ = json.Unmarshal(c.Args, &args)
	if !remote.StateOK(c.Type, state, pending, args.Activation) {
		t.ack(c, sum, remote.AckRejected, remote.ReasonWrongState, nil)
		return
	}
	_ = root
	switch c.Type {
	case remote.TypeStatus:
		t.publishStatus(true)
		t.ack(c, sum, remote.AckSucceeded, "", nil)
	case remote.TypeUnbind:
		t.mu.Lock()
		t.executing[c.ID] = true
		t.mu.Unlock()
		t.ack(c, sum, remote.AckAccepted, "", nil)
		go t.unbind(c, sum)
	case remote.TypeProvision:
		t.provision(c, sum)
	case remote.TypeUpdate:
		t.onUpdate(c, sum)
	}
}

func idOf(payload []byte) string {
	var p struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(payload, &p)
	return p.ID
}

func (t *Terminal) unbind(c remote.Command, sum [32]byte) {
	a, _ := c.Unbind()
	t.mu.Lock()
	count := t.batch
	t.mu.Unlock()
	settlement := "empty-batch"
	if count > 0 {
		switch a.Unsettled {
		case remote.UnsettledRefuse:
			t.ack(c, sum, remote.AckFailed, remote.ReasonUnsettledBatch, nil)
			return
		case remote.UnsettledForce:
			settlement = "forced"
		default:
			if s := t.fleet.opts.Settler; s != nil {
				if err := s.Settle(t.Serial, count); err != nil {
					t.ack(c, sum, remote.AckFailed, remote.ReasonSettlementFailed, nil)
					return
				}
			}
			settlement = "SETTLED"
		}
	}
	t.mu.Lock()
	t.state, t.batch, t.tid = "unactivated", 0, ""
	t.mu.Unlock()
	t.ack(c, sum, remote.AckSucceeded, "", map[string]any{"settlement": settlement, "batch": "000001", "txns_removed": count,
		"binding_removed": true, "keys_zeroised": true})
	t.publishStatus(true)
}

func (t *Terminal) provision(c remote.Command, sum [32]byte) {
	p, err := c.Provision()
	if err != nil {
		t.ack(c, sum, remote.AckRejected, remote.ReasonInvalid, nil)
		return
	}
	tmk, ok := box.OpenAnonymous(nil, p.TMKSealed, t.XPub, t.xPriv)
	if !ok {
		t.ack(c, sum, remote.AckFailed, remote.ReasonBadSeal, nil)
		return
	}
	if !strings.EqualFold(mac.TMKKCV(tmk), p.TMKKCV) {
		t.ack(c, sum, remote.AckFailed, remote.ReasonBadKCV, nil)
		return
	}
	t.mu.Lock()
	t.state, t.tid, t.pending = "active", string(p.TID), ""
	t.mu.Unlock()
	t.ack(c, sum, remote.AckSucceeded, "", nil)
	select {
	case t.provCh <- c.ID:
	default:
	}
	t.publishStatus(true)
}

// RequestActivation publishes a signed activation_request with code and
// returns its id.
func (t *Terminal) RequestActivation(code string) (string, error) {
	id := fmt.Sprintf("act-%s-%d", t.Serial, time.Now().UnixNano())
	data, _ := json.Marshal(remote.ActivationRequest{Code: code, X25519Pub: t.XPub[:]})
	env, err := remote.SealEvent(t.Priv, remote.Event{V: 1, ID: id, Serial: t.Serial, Type: remote.EvtActivationRequest,
		At: t.fleet.opts.Now().UTC(), Data: data})
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	t.pending = id
	t.mu.Unlock()
	t.publish(remote.EvtTopic(t.Serial), false, env)
	return id, nil
}

// WaitProvision waits for the provision that answers the pending request.
func (t *Terminal) WaitProvision(d time.Duration) (string, error) {
	select {
	case id := <-t.provCh:
		return id, nil
	case <-time.After(d):
		return "", errors.New("no provision")
	}
}

// State is the terminal's lifecycle state.
func (t *Terminal) State() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// Acquirer is an in-process settlement counterpart for simterm fleets: it
// takes Hold per settlement, fails every FailEvery-th one (0: none) and
// records the peak of settlements in progress at once.
type Acquirer struct {
	Hold      time.Duration
	FailEvery int

	n, cur, peak, failed atomic.Int64
}

// Settle implements Settler.
func (a *Acquirer) Settle(serial string, count int) error {
	c := a.cur.Add(1)
	for {
		p := a.peak.Load()
		if c <= p || a.peak.CompareAndSwap(p, c) {
			break
		}
	}
	defer a.cur.Add(-1)
	time.Sleep(a.Hold)
	n := a.n.Add(1)
	if a.FailEvery > 0 && n%int64(a.FailEvery) == 0 {
		a.failed.Add(1)
		return errors.New("acquirer: settlement refused")
	}
	return nil
}

// Peak is the most settlements in progress at once; Count how many began;
// Failed how many failed.
func (a *Acquirer) Peak() int64   { return a.peak.Load() }
func (a *Acquirer) Count() int64  { return a.n.Load() }
func (a *Acquirer) Failed() int64 { return a.failed.Load() }

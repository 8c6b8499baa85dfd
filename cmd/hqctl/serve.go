package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/nacl/box"

	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal/remote"
)

// The activation service (`hqctl serve`): it answers each verified
// activation_request whose code is good with a signed provision command
// carrying a fresh TMK sealed to the terminal, and prints the fleet's other
// events and acks. spec/remote.md has no negative answer to an activation
// request: a refused one gets nothing, and the terminal shows NO ANSWER
// FROM HQ when its 120 s wait runs out; the refusal is on HQ's log.

const (
	// defaultProvisionTTL: the terminal waits 120 s for the answer, so a
	// provision command is worthless long before 10 minutes.
	defaultProvisionTTL = 10 * time.Minute
	// defaultMaxRequestAge: an activation request older than this (a queue
	// drained after an HQ outage) has no terminal waiting for it any more;
	// answering would only burn the code. 120 s of waiting plus clock skew.
	defaultMaxRequestAge = 10 * time.Minute
	// serveClientID is fixed so the broker keeps the service's persistent
	// session (CleanSession=false, QoS 1) and queues requests that arrive
	// while it restarts.
	serveClientID = "hq-serve"
)

// Refusals of serve that are not about the code itself.
const (
	refuseNotEnvelope   = "not-an-envelope"
	refuseWrongKID      = "wrong-kid"
	refuseUnknownDevice = "unknown-device"
	refuseBadSignature  = "bad-signature"
	refuseInvalid       = "invalid-request"
	refuseSerial        = "serial-mismatch"
	refuseStale         = "stale-request"
)

// publisher is the one paho method the service publishes with.
type publisher interface {
	Publish(topic string, qos byte, retained bool, payload any) paho.Token
}

var _ publisher = paho.Client(nil)

// server answers activation requests. Its handlers run on paho's router
// goroutine, one message at a time, before the message is PUBACKed: the
// state is on disk before the broker forgets the request.
type server struct {
	kid       string
	priv      ed25519.PrivateKey
	statePath string
	acqKeys   string
	reg       *registry
	pub       publisher
	out       *lockedWriter
	log       *slog.Logger
	now       func() time.Time
	rand      io.Reader
	provTTL   time.Duration
	maxAge    time.Duration
	waiters   sync.WaitGroup
}

// lockedWriter serialises lines written from paho's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// line prints one operator line: time, serial, what happened.
func (s *server) line(serial, format string, a ...any) {
	fmt.Fprintf(s.out, "%s %s %s\n", s.now().UTC().Format(time.RFC3339), serial, fmt.Sprintf(format, a...))
}

// registry is the device registry: serial -> Ed25519 public key, from a
// file of factory-init JSON lines or a JSON object. The file is re-read
// when it changes, so terminals added at the factory need no restart.
type registry struct {
	path  string
	log   *slog.Logger
	mu    sync.Mutex
	stamp string
	keys  map[string]ed25519.PublicKey
}

func newRegistry(path string, log *slog.Logger) (*registry, error) {
	r := &registry{path: path, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *registry) reload() error {
	fi, err := os.Stat(r.path)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	stamp := fmt.Sprint(fi.ModTime().UnixNano(), "/", fi.Size())
	if stamp == r.stamp {
		return nil
	}
	keys, err := loadRegistry(r.path)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	r.keys, r.stamp = keys, stamp
	return nil
}

// loadRegistry reads the device registry. A file of factory-init lines is
// read line by line here: loadDeviceKeys takes a file that is one single
// factory-init line (one terminal, the demo's case) for the serial -> key
// object form and fails on it, so only a real object goes there.
func loadRegistry(path string) (map[string]ed25519.PublicKey, error) {
	return loadDeviceKeys(path)
}

// lookup returns serial's key, or nil for a device HQ does not know. A
// registry file that became unreadable keeps the keys last read.
func (r *registry) lookup(serial string) ed25519.PublicKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		r.log.Error("device registry unreadable; using the keys last read", "err", err)
	}
	return r.keys[serial]
}

// verify opens a terminal's envelope: its kid must be dev-<serial> of the
// topic and its signature must verify under the registry's key.
func (s *server) verify(serial string, raw []byte) (remote.Envelope, string, error) {
	env, err := remote.Decode(raw)
	if err != nil {
		return env, refuseNotEnvelope, err
	}
	if env.KID != remote.DeviceKID(serial) {
		return env, refuseWrongKID, fmt.Errorf("kid %q on the topic of %s, want %q", env.KID, serial, remote.DeviceKID(serial))
	}
	pub := s.reg.lookup(serial)
	if pub == nil {
		return env, refuseUnknownDevice, fmt.Errorf("%s is not in the device registry %s", serial, s.reg.path)
	}
	if _, err := remote.Open(raw, map[string]ed25519.PublicKey{env.KID: pub}); err != nil {
		return env, refuseBadSignature, err
	}
	return env, "", nil
}

// handle is the paho message handler for pos/v1/+/evt and pos/v1/+/ack.
func (s *server) handle(_ paho.Client, m paho.Message) {
	serial, kind, ok := remote.ParseTopic(m.Topic())
	if !ok {
		s.log.Warn("message on an unexpected topic", "topic", m.Topic())
		return
	}
	switch kind {
	case remote.KindEvt:
		s.onEvent(serial, m.Payload())
	case remote.KindAck:
		s.onAck(serial, m.Payload())
	}
}

func (s *server) onEvent(serial string, raw []byte) {
	env, why, err := s.verify(serial, raw)
	if why != "" {
		// Say what the unverified message claimed to be, marked as such.
		typ, id := "event", ""
		if ev, perr := remote.ParseEvent(env.Payload); perr == nil {
			typ, id = ev.Type, ev.ID
		}
		s.refuse(serial, typ, id, why, err)
		return
	}
	ev, err := remote.ParseEvent(env.Payload)
	if err != nil {
		s.refuse(serial, "event", "", refuseInvalid, err)
		return
	}
	if ev.Serial != serial {
		s.refuse(serial, ev.Type, ev.ID, refuseSerial, fmt.Errorf("event for %q on the topic of %s", ev.Serial, serial))
		return
	}
	switch ev.Type {
	case remote.EvtActivationRequest:
		s.activate(serial, ev)
	case remote.EvtActivated, remote.EvtUnbound, remote.EvtTamper:
		s.line(serial, "%s %s%s", ev.Type, ev.ID, dataSuffix(ev.Data))
		state := map[string]string{remote.EvtActivated: "active", remote.EvtUnbound: "unactivated", remote.EvtTamper: "tampered"}[ev.Type]
		var d struct {
			TID string `json:"tid"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		s.recordTerminal(serial, &terminalRecord{State: state, TID: d.TID, Event: ev.Type + " " + ev.ID, At: s.now().UTC()})
	default:
		s.line(serial, "%s %s%s", ev.Type, ev.ID, dataSuffix(ev.Data))
	}
}

// refuse logs a request or event that gets no answer.
func (s *server) refuse(serial, typ, id, why string, err error) {
	detail := ""
	if err != nil {
		detail = ": " + err.Error()
	}
	if typ == remote.EvtActivationRequest {
		s.line(serial, "%s %s REFUSED %s%s (nothing sent; the terminal will show NO ANSWER FROM HQ)", typ, id, why, detail)
	} else {
		s.line(serial, "%s %s IGNORED %s%s", typ, id, why, detail)
	}
	s.log.Warn("message refused", "serial", serial, "type", typ, "id", id, "reason", why, "detail", strings.TrimPrefix(detail, ": "))
}

func (s *server) recordTerminal(serial string, rec *terminalRecord) {
	err := withLockedState(s.statePath, func(st *hqState) (bool, error) {
		if rec.TID == "" {
			if old := st.Terminals[serial]; old != nil {
				rec.TID = old.TID
			}
		}
		st.Terminals[serial] = rec
		return true, nil
	})
	if err != nil {
		s.log.Error("record terminal state", "serial", serial, "err", err)
	}
}

// activate answers one verified activation request.
func (s *server) activate(serial string, ev remote.Event) {
	var req remote.ActivationRequest
	if err := json.Unmarshal(ev.Data, &req); err != nil {
		s.refuse(serial, ev.Type, ev.ID, refuseInvalid, fmt.Errorf("data: %w", err))
		return
	}
	if !isDigits(req.Code, 8) || len(req.X25519Pub) != 32 || !remote.ValidID(ev.ID) {
		s.refuse(serial, ev.Type, ev.ID, refuseInvalid, errors.New("want an id, an 8-digit code and a 32-byte x25519_pub"))
		return
	}
	now := s.now().UTC()
	if age := now.Sub(ev.At); !ev.At.IsZero() && age > s.maxAge {
		s.refuse(serial, ev.Type, ev.ID, refuseStale, fmt.Errorf("sent %s ago, the terminal waits 120 s; the code is kept", age.Round(time.Second)))
		return
	}
	var (
		env     []byte
		rec     *codeRecord
		dup     bool
		refusal string
		revoked bool
	)
	err := withLockedState(s.statePath, func(st *hqState) (bool, error) {
		res := st.match(serial, req.Code, ev.ID, now)
		if res.refusal != "" {
			refusal, revoked = res.refusal, res.revoked
			return res.changed, nil
		}
		r := res.rec
		rec, dup = r, res.dup
		if dup {
			env = []byte(r.Provision)
			return false, nil
		}
		provID := newCommandID("prov", serial, now)
		built, err := s.provision(serial, r, ev.ID, provID, req.X25519Pub, now)
		if err != nil {
			return false, err
		}
		// Marked used, with the command, before anything is sent.
		used := now
		r.Status, r.UsedAt, r.Activation, r.ProvisionID, r.Provision = codeUsed, &used, ev.ID, provID, string(built)
		st.Terminals[serial] = &terminalRecord{State: "provisioned", TID: r.TID, Event: "provision " + provID, At: now}
		env = built
		return true, nil
	})
	switch {
	case err != nil:
		s.line(serial, "%s %s FAILED: %v (nothing sent)", ev.Type, ev.ID, err)
		s.log.Error("activation", "serial", serial, "id", ev.ID, "err", err)
		return
	case refusal != "":
		s.refuse(serial, ev.Type, ev.ID, refusal, nil)
		if revoked {
			s.line(serial, "%d wrong codes: the pending activation code of %s is revoked; issue a new one", maxCodeAttempts, serial)
		}
		return
	}
	what := "provision"
	if dup {
		what = "provision re-sent (request delivered again)"
	}
	s.line(serial, "%s %s -> %s %s TID %s MID %s acquirer %s", ev.Type, ev.ID, what, rec.ProvisionID, rec.TID, rec.MID, rec.Acquirer.Addr)
	tok := s.pub.Publish(remote.CmdTopic(serial), 1, false, env)
	s.waiters.Add(1)
	go func(id string) {
		defer s.waiters.Done()
		if !tok.WaitTimeout(30 * time.Second) {
			s.log.Warn("provision publish not confirmed yet; paho retries it on reconnect", "serial", serial, "id", id)
			return
		}
		if err := tok.Error(); err != nil {
			s.line(serial, "provision %s PUBLISH FAILED: %v", id, err)
		}
	}(rec.ProvisionID)
}

// provision builds the signed provision command of an activation: a fresh
// random TMK (odd DES parity, as HSMs import it), sealed to the terminal's
// X25519 key, with its KCV; the TMK is recorded for the acquirer before the
// command exists anywhere but in memory, and zeroised after.
func (s *server) provision(serial string, r *codeRecord, reqID, provID string, x25519Pub []byte, now time.Time) ([]byte, error) {
	tmk := make([]byte, 16)
	defer clear(tmk)
	if _, err := io.ReadFull(s.rand, tmk); err != nil {
		return nil, fmt.Errorf("generate TMK: %w", err)
	}
	setOddParity(tmk)
	var pk [32]byte
	copy(pk[:], x25519Pub)
	sealed, err := box.SealAnonymous(nil, tmk, &pk, s.rand)
	if err != nil {
		return nil, fmt.Errorf("seal TMK: %w", err)
	}
	args, err := json.Marshal(remote.ProvisionArgs{TID: remote.TID(r.TID), MID: remote.MID(r.MID), MerchantName: r.MerchantName,
		Acquirer: r.Acquirer, TMKSealed: sealed, TMKKCV: mac.TMKKCV(tmk), Activation: reqID})
	if err != nil {
		return nil, fmt.Errorf("provision args: %w", err)
	}
	env, err := signCommand([]remote.Signer{{KID: s.kid, Priv: s.priv}}, serial, remote.TypeProvision, provID, args, now, s.provTTL)
	if err != nil {
		return nil, err
	}
	if err := setAcquirerKey(s.acqKeys, r.TID, tmk); err != nil {
		return nil, err
	}
	return env, nil
}

// setOddParity sets each byte's low bit so the byte has odd parity, the
// DES key convention (FIPS 46-3) that HSMs check on key import.
func setOddParity(k []byte) {
	for i, b := range k {
		b &^= 1
		ones := 0
		for v := b; v != 0; v >>= 1 {
			ones += int(v & 1)
		}
		if ones%2 == 0 {
			b |= 1
		}
		k[i] = b
	}
}

func (s *server) onAck(serial string, raw []byte) {
	env, why, err := s.verify(serial, raw)
	if why != "" {
		id := ""
		if a, perr := remote.ParseAck(env.Payload); perr == nil {
			id = a.CmdID
		}
		s.refuse(serial, "ack", id, why, err)
		return
	}
	a, err := remote.ParseAck(env.Payload)
	if err != nil || a.Serial != serial {
		s.refuse(serial, "ack", a.CmdID, refuseInvalid, err)
		return
	}
	reason := ""
	if a.Reason != "" {
		reason = " reason=" + a.Reason
	}
	s.line(serial, "ack %s %s%s%s", a.CmdID, a.State, reason, dataSuffix(a.Result))
	if strings.HasPrefix(a.CmdID, "prov-") && (a.State == remote.AckFailed || a.State == remote.AckRejected) {
		s.line(serial, "provision %s was not installed; the activation code is spent: issue a new one", a.CmdID)
		s.recordTerminal(serial, &terminalRecord{State: "unactivated", Event: "ack " + a.CmdID + " " + a.State, At: s.now().UTC()})
	}
}

// dataSuffix renders an event's data or an ack's result as " k=v …".
func dataSuffix(raw json.RawMessage) string {
	pairs := resultPairs(raw)
	if len(pairs) == 0 {
		return ""
	}
	return " " + strings.Join(pairs, " ")
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// newPersistentClient makes a client with a fixed client id and
// CleanSession=false, so the broker queues QoS 1 events while the service
// is away. It retries the first connection until it succeeds (in a lab
// the broker may start after it). onConnect runs on every (re)connection; it re-subscribes, which a
// persistent session does not strictly need but a broker that lost its
// state (an embedded lab broker restarted) does.
func (m *mqttFlags) newPersistentClient(id string, handler paho.MessageHandler, onConnect paho.OnConnectHandler, log *slog.Logger) (paho.Client, error) {
	o, err := m.options(id, handler)
	if err != nil {
		return nil, err
	}
	o.SetCleanSession(false).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetOnConnectHandler(onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("broker connection lost; reconnecting", "broker", m.broker, "err", err)
		})
	return paho.NewClient(o), nil
}

// cmdServe runs the activation service until SIGINT or SIGTERM.
func cmdServe(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runServe(ctx, args, stdout, stderr)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "--broker URL --key DIR/KID.key --state FILE --registry FILE --acquirer-keys FILE [flags]",
		"The activation service: answer each activation request that verifies with the\nterminal's device key (--registry) and carries a good code with a signed\nprovision command; print the fleet's verified events and acks.")
	var mf mqttFlags
	mf.register(fs)
	keyPath := fs.String("key", "", "HQ signing key, DIR/KID.key from keygen (required)")
	kid := fs.String("kid", "", "key id (default: the key file name without .key)")
	statePath := fs.String("state", "", "HQ state file with the activation codes (required)")
	regPath := fs.String("registry", "", "device registry: factory-init JSON lines, or a JSON object serial -> ed25519_pub (required)")
	acqKeys := fs.String("acquirer-keys", "", "acquirer keys file, JSON object TID -> TMK hex, updated atomically (the acquirer-sim --keys file) (required)")
	clientIDFlag := fs.String("client-id", serveClientID, "MQTT client id; fixed, for the persistent session")
	provTTL := fs.Duration("provision-ttl", defaultProvisionTTL, "validity of a provision command")
	maxAge := fs.Duration("max-request-age", defaultMaxRequestAge, "refuse activation requests older than this")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hqctl serve: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *keyPath == "" || *statePath == "" || *regPath == "" || *acqKeys == "" {
		return usageErr("--key, --state, --registry and --acquirer-keys are required")
	}
	if *maxAge <= 0 {
		return usageErr("--max-request-age must be positive")
	}
	if err := checkTTL(*provTTL); err != nil {
		return usageErr("--provision-ttl: %v", err)
	}
	k, priv, err := loadSigningKey(*keyPath, *kid)
	if err != nil {
		return usageErr("%v", err)
	}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: stderr}, nil))
	reg, err := newRegistry(*regPath, log)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := withLockedState(*statePath, func(*hqState) (bool, error) { return false, nil }); err != nil {
		fmt.Fprintf(stderr, "hqctl serve: %v\n", err)
		return exitFailed
	}
	s := &server{kid: k, priv: priv, statePath: *statePath, acqKeys: *acqKeys, reg: reg,
		out: &lockedWriter{w: stdout}, log: log, now: time.Now, rand: rand.Reader, provTTL: *provTTL, maxAge: *maxAge}

	var once sync.Once
	onConnect := func(c paho.Client) {
		tok := c.SubscribeMultiple(map[string]byte{remote.EvtWildcard: 1, remote.AckWildcard: 1}, s.handle)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			// The persistent session may still hold the subscriptions;
			// the next reconnection tries again.
			log.Error("subscribe failed", "err", tok.Error())
			return
		}
		once.Do(func() {
			s.line("-", "serving: subscribed to %s and %s on %s as %s (signing key %s)",
				remote.EvtWildcard, remote.AckWildcard, mf.broker, *clientIDFlag, k)
		})
		log.Info("connected and subscribed", "broker", mf.broker, "client_id", *clientIDFlag)
	}
	c, err := mf.newPersistentClient(*clientIDFlag, s.handle, onConnect, log)
	if err != nil {
		return usageErr("%v", err)
	}
	s.pub = c   // before Connect: queued requests are handled as soon as it connects
	c.Connect() // with ConnectRetry the token completes only once connected; retries until then
	<-ctx.Done()
	c.Disconnect(500)
	s.waiters.Wait()
	s.line("-", "stopped")
	return exitOK
}

package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/mqttcap"
	"github.com/posagent/posagent/internal/tlsfiles"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal/remote"
)

// What HQ-side floods may cost the terminal (spec/remote.md: "The terminal
// bounds what HQ-side floods can cost it").
const (
	// inboxMax is the most commands queued between their PUBACK and the
	// event loop's decision; more stay unacknowledged at the MQTT level
	// (parked) until there is room.
	inboxMax = 64
	// parkedMax bounds the unacknowledged commands held in memory while
	// the inbox is full (distinct, validly signed commands, which only HQ
	// can make). When it is reached the command goroutine waits for room,
	// and the broker holds the rest: TCP back-pressure, nothing dropped.
	parkedMax = 64
	// incomingMax is the hand-off queue between paho's router and the one
	// goroutine that handles commands.
	incomingMax = 256
	// packetLimit caps an MQTT packet read from the broker: an envelope
	// of remote.MaxEnvelope plus the topic and headers. Anything bigger is
	// discarded as it streams in (internal/mqttcap).
	packetLimit = remote.MaxEnvelope + 1024
	// answeredWindow: a command answered less than this ago, delivered
	// again, is acknowledged at the MQTT level and not queued again; the
	// stored final ack of a recorded command is re-sent at most this
	// often. A flood of one command costs at most one ack per window.
	answeredWindow = time.Second
	// resendsPerSecond caps the re-sent final acks of all commands.
	resendsPerSecond = 10
	// parkRetry is how often parked commands are tried again when no
	// inbox slot has been freed (a store that refused a write).
	parkRetry = 2 * time.Second
)

// remoteLink is the terminal's MQTT side (spec/remote.md) on paho,
// following its known pitfalls:
//   - the default publish handler is set before Connect: with
//     CleanSession=false, queued commands arrive before Subscribe returns;
//   - OrderMatters=true with a handler that only hands the message to one
//     command goroutine through a bounded queue: paho spawns no goroutine
//     per message, commands are handled one at a time, in order, and a
//     flood is slowed by TCP back-pressure, never dropped unacknowledged;
//   - automatic acks are off: a command is fsynced into the inbox before
//     its PUBACK, so a power cut after PUBACK never loses it; a command
//     that does not fit (inbox full, store refusing) is held unacknowledged
//     until there is room, and a message refused on purpose is acked so
//     the broker forgets it;
//   - packets over packetLimit never reach paho in full (mqttcap under
//     its connection);
//   - the subscription is renewed on every connect (a session the broker
//     lost comes back without it);
//   - acks and events go through a durable outbox flushed on every
//     connect, since paho's in-memory store does not survive a reboot.
type remoteLink struct {
	log    *slog.Logger
	serial string
	ident  *storage.IdentityStore
	devKey ed25519.PrivateKey
	client mqtt.Client
	keys   atomic.Pointer[remote.Keyring]
	// subscribed: the cmd subscription of this connection is in place.
	// Nothing is published before it, so HQ never sees the terminal
	// online while a command it sends in answer would find no
	// subscription (a fresh session) and be dropped by the broker.
	subscribed atomic.Bool

	incoming chan mqtt.Message // paho's router -> the command goroutine
	room     chan struct{}     // the event loop freed an inbox slot
	lost     chan struct{}     // the connection was lost: parked messages come again
	wake     chan struct{}     // the event loop has inbox work
	kick     chan struct{}     // the outbox has something to send
	resends  chan []byte       // stored final acks to publish again
	stop     chan struct{}
	wg       sync.WaitGroup

	parked []parkedCommand // the command goroutine's own

	mu       sync.Mutex
	queued   map[[32]byte]uint64    // payload SHA-256 -> inbox sequence
	answered map[[32]byte]time.Time // payload SHA-256 -> when the loop last answered it
	resent   map[string]time.Time   // command id -> last re-send of its final ack
	tokens   float64                // resendsPerSecond bucket
	refilled time.Time

	statusMu    sync.Mutex
	status      []byte // the last status payload, re-published on connect
	statusDirty bool   // status not published since it changed

	// Counters of what was refused, logged with each refusal.
	Unverified atomic.Int64 // envelopes dropped unanswered (bad JSON, kid, signature, size)
	Retained   atomic.Int64 // retained messages on the cmd topic, ignored
	Oversize   atomic.Int64 // packets over packetLimit, discarded unread
	Duplicates atomic.Int64 // commands already queued or answered, acked without storing
}

type parkedCommand struct {
	msg mqtt.Message
	sum [32]byte
}

func newRemoteLink(cfg Config, log *slog.Logger, id storage.Identity, ident *storage.IdentityStore) (*remoteLink, error) {
	r := &remoteLink{
		log: log.With(slog.String("part", "mqtt")), serial: id.Serial, ident: ident, devKey: id.DeviceEd25519Priv,
		incoming: make(chan mqtt.Message, incomingMax), room: make(chan struct{}, 1), lost: make(chan struct{}, 1),
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1), resends: make(chan []byte, 8),
		stop:   make(chan struct{}),
		queued: map[[32]byte]uint64{}, answered: map[[32]byte]time.Time{}, resent: map[string]time.Time{},
		tokens: resendsPerSecond,
	}
	kr, err := ident.Keyring()
	if err != nil {
		return nil, err
	}
	r.keys.Store(&kr)
	items, err := ident.Inbox()
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		r.queued[queuedSum(it)] = it.Seq
	}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.MQTT.Broker).
		SetClientID(remote.ClientID(id.Serial)).
		SetUsername(id.Serial).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2*time.Second).
		SetMaxReconnectInterval(30*time.Second).
		SetKeepAlive(30*time.Second).
		SetConnectTimeout(10*time.Second).
		SetWill(remote.StatusTopic(id.Serial), string(remote.OfflineWill(id.Serial)), 1, true).
		SetDefaultPublishHandler(r.onMessage).
		SetOnConnectHandler(r.onConnect).
		SetCustomOpenConnectionFn(r.dial).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			r.subscribed.Store(false)
			r.log.Warn("broker connection lost", slog.String("err", err.Error()))
			select {
			case r.lost <- struct{}{}:
			default:
			}
		})
	tc, err := tlsfiles.Client(cfg.MQTT.CAFile, cfg.MQTT.CertFile, cfg.MQTT.KeyFile,
		tlsfiles.Names{CA: "mqtt.ca_file", Cert: "mqtt.cert_file", Key: "mqtt.key_file"})
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	r.client = mqtt.NewClient(opts)
	return r, nil
}

// queuedSum is the payload hash an inbox item is deduplicated by.
func queuedSum(it storage.InboxItem) [32]byte {
	if it.Envelope == nil {
		return sha256.Sum256(it.LegacyPayload)
	}
	env, err := remote.Decode(it.Envelope)
	if err != nil {
		return sha256.Sum256(it.Envelope)
	}
	return sha256.Sum256(env.Payload)
}

// dial opens the broker connection paho would (tcp:// or ssl://, the two
// schemes the config accepts) and puts mqttcap under paho's reader.
func (r *remoteLink) dial(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = o.Dialer.Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts":
		tc := o.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c, err = tls.DialWithDialer(o.Dialer, "tcp", uri.Host, tc)
	default:
		return nil, fmt.Errorf("broker scheme %q: want tcp or ssl", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return mqttcap.Wrap(c, packetLimit, func(ref mqttcap.Refused) {
		n := r.Oversize.Add(1)
		r.log.Warn("packet over the size limit discarded unread", slog.String("topic", ref.Topic),
			slog.Int("bytes", ref.Size), slog.Int("limit", packetLimit), slog.Int64("oversize_total", n))
	}), nil
}

// start connects in the background (ConnectRetry keeps trying; the
// terminal sells while the broker is away) and starts the command
// goroutine and the outbox flusher.
func (r *remoteLink) start() {
	r.wg.Add(2)
	go r.commands()
	go r.flusher()
	r.client.Connect() // with ConnectRetry the token completes only once connected
	r.kickOutbox()
	r.wakeLoop() // an inbox left by a power cut
}

// close publishes the offline status (the Will covers unclean stops),
// gives the outbox a moment, and disconnects.
func (r *remoteLink) close(status []byte) {
	close(r.stop)
	r.wg.Wait()
	if r.client.IsConnectionOpen() {
		r.flushOnce(2 * time.Second)
		if status != nil {
			t := r.client.Publish(remote.StatusTopic(r.serial), 1, true, status)
			t.WaitTimeout(2 * time.Second)
		}
	}
	r.client.Disconnect(250)
}

func (r *remoteLink) onConnect(c mqtt.Client) {
	r.log.Info("broker connected")
	r.subscribed.Store(false)
	// Subscribe on every connect; never wait on a token inside a paho
	// callback.
	go func() {
		t := c.Subscribe(remote.CmdTopic(r.serial), 1, r.onMessage)
		if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			r.log.Error("subscribe", slog.Any("err", t.Error()))
		}
		r.subscribed.Store(true)
		r.statusMu.Lock()
		st := r.status
		r.statusMu.Unlock()
		if st != nil {
			c.Publish(remote.StatusTopic(r.serial), 1, true, st)
		}
		r.kickOutbox()
	}()
}

// onMessage runs on paho's router goroutine and hands the message to the
// command goroutine. When that one is behind, the hand-off waits: the
// router stops reading, TCP pushes back on the broker, and nothing is
// dropped or left unacknowledged (a message never acked holds one of the
// broker's in-flight slots until the session resumes; mosquitto 2.0 does
// not even stop at its window then). The command goroutine never waits on
// the network, so the wait is short: pings keep their 10 s.
func (r *remoteLink) onMessage(_ mqtt.Client, msg mqtt.Message) {
	select {
	case r.incoming <- msg:
	case <-r.stop:
	}
}

// commands is the one goroutine that handles incoming commands: bounded
// concurrency however many arrive.
func (r *remoteLink) commands() {
	defer r.wg.Done()
	retry := time.NewTicker(parkRetry)
	defer retry.Stop()
	for {
		select {
		case <-r.stop:
			return
		case m := <-r.incoming:
			r.receive(m)
		case <-r.room:
			r.unpark()
		case <-retry.C:
			r.unpark()
		case <-r.lost:
			r.dropParked()
		}
	}
}

// dropParked forgets the parked messages when the connection is lost:
// their PUBACKs can no longer be sent on it, and the broker delivers them
// again when the session resumes (CleanSession=false).
func (r *remoteLink) dropParked() {
	if len(r.parked) > 0 {
		r.log.Info("connection lost: parked commands left to the broker", slog.Int("count", len(r.parked)))
	}
	r.parked = nil
}

// receive decides on one message. An envelope that is too big, not JSON,
// of an unknown kid or badly signed gets no reply: a log line and a
// counter. So does a retained one (commands are never retained). A
// command already queued or answered is acknowledged without being stored
// again (a recorded one gets its stored final ack again, rate-limited).
// Anything else is written to the inbox (fsynced) before its PUBACK.
func (r *remoteLink) receive(m mqtt.Message) {
	if m.Topic() != remote.CmdTopic(r.serial) {
		m.Ack()
		return
	}
	if m.Retained() {
		n := r.Retained.Add(1)
		r.log.Warn("command ignored: retained on the cmd topic (commands are never retained)",
			slog.Int("bytes", len(m.Payload())), slog.Int64("retained_total", n))
		m.Ack()
		return
	}
	raw := m.Payload()
	env, err := remote.Open(raw, r.keyring().PublicKeys())
	if err != nil {
		n := r.Unverified.Add(1)
		r.log.Warn("command dropped unverified", slog.String("err", err.Error()), slog.Int("bytes", len(raw)),
			slog.Int64("unverified_total", n))
		m.Ack() // dropped on purpose: a re-delivery would change nothing
		return
	}
	sum := sha256.Sum256(env.Payload)
	if r.alreadyHandled(env.Payload, sum) {
		m.Ack()
		return
	}
	// Inbox and parking full: wait for room. Meanwhile paho's router waits
	// on the hand-off, TCP pushes back, and the broker keeps the rest.
	for len(r.parked) >= parkedMax {
		select {
		case <-r.room:
		case <-time.After(parkRetry):
		case <-r.lost:
			r.dropParked()
		case <-r.stop:
			return
		}
		r.unpark()
	}
	if len(r.parked) > 0 {
		r.park(m, sum) // behind the ones waiting already: order kept
		return
	}
	r.store(m, sum)
}

// alreadyHandled reports whether the command is queued, was answered by
// the loop within answeredWindow, or is recorded with this very payload
// (then its stored final ack is re-sent, rate-limited).
func (r *remoteLink) alreadyHandled(payload []byte, sum [32]byte) bool {
	now := time.Now()
	r.mu.Lock()
	_, queued := r.queued[sum]
	at, answered := r.answered[sum]
	r.mu.Unlock()
	if queued {
		r.duplicate("already queued")
		return true
	}
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(payload, &p) == nil && remote.ValidID(p.ID) {
		if c, ok, err := r.ident.Seen(p.ID); err == nil && ok && c.PayloadSHA256 == sum {
			r.duplicate("answered before")
			r.resendAck(p.ID, c.Ack)
			return true
		}
	}
	// Answered but not recorded (an unbind in progress answers
	// in_progress): once per window.
	if answered && now.Sub(at) < answeredWindow {
		r.duplicate("just answered")
		return true
	}
	return false
}

func (r *remoteLink) duplicate(why string) {
	n := r.Duplicates.Add(1)
	r.log.Debug("command delivered again: acknowledged, not stored", slog.String("why", why), slog.Int64("duplicates_total", n))
}

// store writes the command to the inbox and acknowledges it; a full inbox
// or a store that refuses the write parks it unacknowledged.
func (r *remoteLink) store(m mqtt.Message, sum [32]byte) bool {
	seq, err := r.ident.InboxAdd(m.Payload(), inboxMax)
	if err != nil {
		if !errors.Is(err, storage.ErrInboxFull) {
			r.log.Error("command not stored: held unacknowledged, tried again", slog.String("err", err.Error()))
		}
		r.park(m, sum)
		return false
	}
	r.mu.Lock()
	r.queued[sum] = seq
	r.mu.Unlock()
	m.Ack()
	r.wakeLoop()
	return true
}

func (r *remoteLink) park(m mqtt.Message, sum [32]byte) {
	if len(r.parked) == 0 {
		r.log.Info("inbox full: commands wait unacknowledged", slog.Int("inbox", inboxMax))
	}
	r.parked = append(r.parked, parkedCommand{msg: m, sum: sum})
}

// unpark moves parked commands into the inbox while it has room.
func (r *remoteLink) unpark() {
	for len(r.parked) > 0 {
		p := r.parked[0]
		r.parked = r.parked[1:]
		env, err := remote.Decode(p.msg.Payload())
		if err == nil && r.alreadyHandled(env.Payload, p.sum) {
			p.msg.Ack()
			continue
		}
		if !r.store(p.msg, p.sum) {
			// store parked it again at the end: put it back in front.
			last := r.parked[len(r.parked)-1]
			r.parked = append([]parkedCommand{last}, r.parked[:len(r.parked)-1]...)
			return
		}
	}
}

// resendAck publishes a stored final ack again, at most once per
// answeredWindow per command and resendsPerSecond in all.
func (r *remoteLink) resendAck(id string, ack []byte) {
	now := time.Now()
	r.mu.Lock()
	r.tokens = min(resendsPerSecond, r.tokens+now.Sub(r.refilled).Seconds()*resendsPerSecond)
	r.refilled = now
	last, ok := r.resent[id]
	allow := (!ok || now.Sub(last) >= answeredWindow) && r.tokens >= 1
	if allow {
		r.tokens--
		r.resent[id] = now
		if len(r.resent) > 4*inboxMax {
			for k, t := range r.resent {
				if now.Sub(t) >= answeredWindow {
					delete(r.resent, k)
				}
			}
		}
	}
	r.mu.Unlock()
	if !allow {
		return
	}
	r.log.Info("command delivered again: stored final ack re-sent", slog.String("id", id))
	select {
	case r.resends <- ack:
	default:
	}
}

// keyring is the HQ keyring in force.
func (r *remoteLink) keyring() remote.Keyring { return *r.keys.Load() }

// setKeyring replaces the keyring after an hq_keys command.
func (r *remoteLink) setKeyring(k remote.Keyring) { r.keys.Store(&k) }

// queuedCommands returns the queued commands, oldest first (at most inboxMax).
func (r *remoteLink) queuedCommands() ([]storage.InboxItem, error) { return r.ident.Inbox() }

// commandDone removes a handled command from the inbox (unless its ack's
// transaction did: removed), remembers it as answered and makes room for
// a parked one.
func (r *remoteLink) commandDone(it storage.InboxItem, removed bool) error {
	if !removed {
		if err := r.ident.InboxDone(it.Seq); err != nil {
			return err
		}
	}
	sum := queuedSum(it)
	now := time.Now()
	r.mu.Lock()
	delete(r.queued, sum)
	r.answered[sum] = now
	if len(r.answered) > 4*inboxMax {
		for k, t := range r.answered {
			if now.Sub(t) >= answeredWindow {
				delete(r.answered, k)
			}
		}
	}
	r.mu.Unlock()
	select {
	case r.room <- struct{}{}:
	default:
	}
	return nil
}

func (r *remoteLink) wakeLoop() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// wakeLoopAfter wakes the event loop once d has passed (a command kept in
// the inbox after a failed write is tried again).
func (r *remoteLink) wakeLoopAfter(d time.Duration) { time.AfterFunc(d, r.wakeLoop) }

func (r *remoteLink) kickOutbox() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// setStatus keeps the retained status for the next connect and has the
// flusher publish it now: the event loop never waits on the network (a
// paho Publish can block while the connection is busy).
func (r *remoteLink) setStatus(payload []byte) {
	r.statusMu.Lock()
	r.status = payload
	r.statusDirty = true
	r.statusMu.Unlock()
	r.kickOutbox()
}

// publishStatus publishes the latest status if it has not been yet.
func (r *remoteLink) publishStatus() {
	r.statusMu.Lock()
	st, dirty := r.status, r.statusDirty
	r.statusDirty = false
	r.statusMu.Unlock()
	if dirty && st != nil {
		r.client.Publish(remote.StatusTopic(r.serial), 1, true, st).WaitTimeout(5 * time.Second)
	}
}

// flusher sends the outbox whenever kicked and connected (an item leaves
// the outbox only after the broker's PUBACK), and the re-sent acks.
func (r *remoteLink) flusher() {
	defer r.wg.Done()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case ack := <-r.resends:
			if r.client.IsConnectionOpen() {
				r.client.Publish(remote.AckTopic(r.serial), 1, false, ack).WaitTimeout(5 * time.Second)
			}
			continue
		case <-r.kick:
		case <-t.C:
		}
		if r.client.IsConnectionOpen() && r.subscribed.Load() {
			r.publishStatus()
			r.flushOnce(10 * time.Second)
		}
	}
}

// flushBatch is how many outbox messages are published before their
// PUBACKs are awaited and their removal written in one transaction (one
// fsync per batch, not per message: the event loop shares the store's
// single writer).
const flushBatch = 32

func (r *remoteLink) flushOnce(wait time.Duration) {
	items, err := r.ident.Outbox()
	if err != nil {
		r.log.Error("read outbox", slog.String("err", err.Error()))
		return
	}
	for len(items) > 0 {
		batch := items[:min(len(items), flushBatch)]
		items = items[len(batch):]
		toks := make([]mqtt.Token, len(batch))
		for i, it := range batch {
			toks[i] = r.client.Publish(it.Topic, 1, false, it.Payload)
		}
		n := 0
		for i, tok := range toks {
			if !tok.WaitTimeout(wait) || tok.Error() != nil {
				r.log.Warn("outbox publish", slog.Any("err", tok.Error()), slog.Uint64("seq", batch[i].Seq))
				break
			}
			n++
		}
		if err := r.delivered(batch[:n]); err != nil {
			r.log.Error("outbox done", slog.String("err", err.Error()))
			return
		}
		if n < len(batch) {
			return
		}
	}
}

// delivered removes messages the broker has acknowledged from the outbox,
// in one transaction. When one is a final ack that reported the
// merchant's unsettled transactions (unbind with force), the record kept
// for replays gets a copy without them in the same transaction
// (spec/remote.md: result.unsettled is dropped from the store once the
// ack has reached the broker): a replay of the command is answered
// without masked PANs, amounts and times, and nothing of them stays with
// the identity.
func (r *remoteLink) delivered(items []storage.OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	type redaction struct {
		cmdID     string
		old, next []byte
	}
	var redact []redaction
	for _, it := range items {
		if _, kind, ok := remote.ParseTopic(it.Topic); ok && kind == remote.KindAck {
			if id, next, ok := r.redactUnsettled(it.Payload); ok {
				redact = append(redact, redaction{id, it.Payload, next})
			}
		}
	}
	return r.ident.Update(func(tx *storage.IdentityTx) error {
		for _, it := range items {
			if err := tx.Done(it.Seq); err != nil {
				return err
			}
		}
		for _, x := range redact {
			ok, err := tx.ReplaceSeenAck(x.cmdID, x.old, x.next)
			if err != nil {
				return err
			}
			if ok {
				r.log.Info("unsettled transactions dropped from the recorded ack", slog.String("id", x.cmdID))
			}
		}
		return nil
	})
}

// redactUnsettled returns the final ack env re-signed without
// result.unsettled (its length kept as result.unsettled_count), or ok false
// when env is not a final ack with unsettled transactions.
func (r *remoteLink) redactUnsettled(env []byte) (cmdID string, next []byte, ok bool) {
	e, err := remote.Decode(env)
	if err != nil {
		return "", nil, false
	}
	a, err := remote.ParseAck(e.Payload)
	if err != nil || !a.Final() {
		return "", nil, false
	}
	var res map[string]json.RawMessage
	if json.Unmarshal(a.Result, &res) != nil || res["unsettled"] == nil {
		return "", nil, false
	}
	var list []json.RawMessage
	_ = json.Unmarshal(res["unsettled"], &list)
	delete(res, "unsettled")
	res["unsettled_count"], _ = json.Marshal(len(list))
	if a.Result, err = json.Marshal(res); err != nil {
		return "", nil, false
	}
	next, err = remote.SealAck(r.devKey, a)
	if err != nil {
		return "", nil, false
	}
	return a.CmdID, next, true
}

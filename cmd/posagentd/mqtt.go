package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/terminal/remote"
)

// remoteLink is the terminal's MQTT side (spec/remote.md) on paho,
// following its known pitfalls:
//   - the default publish handler is set before Connect: with
//     CleanSession=false, queued commands arrive before Subscribe returns;
//   - OrderMatters=false and handlers that never block: the command handler
//     only verifies, makes the command durable and wakes the event loop;
//   - the command is fsynced before the PUBACK: automatic acks are off
//     and the handler acks a message itself once it is stored (or once it
//     is deliberately dropped), so a power cut after PUBACK never loses a
//     command, and a command the store refused is left unacknowledged for
//     the broker to deliver again on the next connect;
//   - the subscription is renewed on every connect (a session the broker
//     lost comes back without it);
//   - acks and events go through a durable outbox flushed on every connect,
//     since paho's in-memory store does not survive a reboot.
type remoteLink struct {
	log    *slog.Logger
	serial string
	ident  *storage.IdentityStore
	hqKeys map[string]ed25519.PublicKey
	devKey ed25519.PrivateKey
	client mqtt.Client

	inboxMu sync.Mutex
	wake    chan struct{} // the event loop has inbox work
	kick    chan struct{} // the outbox has something to send
	stop    chan struct{}
	done    chan struct{}

	statusMu sync.Mutex
	status   []byte // the last status payload, re-published on connect

	Unverified atomic.Int64 // envelopes dropped unanswered (bad JSON, kid, signature, size)
}

// kvInbox holds verified command payloads between PUBACK and the event
// loop's decision (identity store: it must survive the wipe too).
const kvInbox = "inbox"

func newRemoteLink(cfg Config, log *slog.Logger, id storage.Identity, ident *storage.IdentityStore) (*remoteLink, error) {
	r := &remoteLink{
		log: log.With(slog.String("part", "mqtt")), serial: id.Serial, ident: ident,
		hqKeys: map[string]ed25519.PublicKey{}, devKey: id.DeviceEd25519Priv,
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	for kid, k := range id.HQKeys {
		r.hqKeys[kid] = ed25519.PublicKey(k)
	}
	will, _ := json.Marshal(map[string]any{"serial": id.Serial, "online": false})
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.MQTT.Broker).
		SetClientID(remote.ClientID(id.Serial)).
		SetUsername(id.Serial).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2*time.Second).
		SetMaxReconnectInterval(30*time.Second).
		SetKeepAlive(30*time.Second).
		SetConnectTimeout(10*time.Second).
		SetWill(remote.StatusTopic(id.Serial), string(will), 1, true).
		SetDefaultPublishHandler(r.onMessage).
		SetOnConnectHandler(r.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			r.log.Warn("broker connection lost", slog.String("err", err.Error()))
		})
	if cfg.MQTT.CAFile != "" || cfg.MQTT.CertFile != "" {
		tc, err := tlsFromFiles(cfg.MQTT.CAFile, cfg.MQTT.CertFile, cfg.MQTT.KeyFile)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	r.client = mqtt.NewClient(opts)
	return r, nil
}

func tlsFromFiles(ca, cert, key string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.ca_file %s: no PEM certificate", ca)
		}
		tc.RootCAs = pool
	}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("mqtt.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// start connects in the background (ConnectRetry keeps trying; the
// terminal sells while the broker is away) and starts the outbox flusher.
func (r *remoteLink) start() {
	r.client.Connect() // with ConnectRetry the token completes only once connected
	go r.flusher()
	r.kickOutbox()
	r.wakeLoop() // an inbox left by a power cut
}

// close publishes the offline status (the Will covers unclean stops),
// gives the outbox a moment, and disconnects.
func (r *remoteLink) close(status []byte) {
	close(r.stop)
	<-r.done
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
	// Subscribe on every connect; never wait on a token inside a paho
	// callback.
	go func() {
		t := c.Subscribe(remote.CmdTopic(r.serial), 1, r.onMessage)
		if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			r.log.Error("subscribe", slog.Any("err", t.Error()))
		}
		r.statusMu.Lock()
		st := r.status
		r.statusMu.Unlock()
		if st != nil {
			c.Publish(remote.StatusTopic(r.serial), 1, true, st)
		}
		r.kickOutbox()
	}()
}

// onMessage runs on paho's goroutine. An envelope that is too big, not
// JSON, of an unknown kid or badly signed gets no reply: a log line and a
// counter. A verified one is written to the inbox (fsynced) before this
// returns, that is before the PUBACK.
func (r *remoteLink) onMessage(_ mqtt.Client, msg mqtt.Message) {
	if msg.Topic() != remote.CmdTopic(r.serial) {
		msg.Ack()
		return
	}
	raw := msg.Payload()
	env, err := remote.Open(raw, r.hqKeys)
	if err != nil {
		r.Unverified.Add(1)
		r.log.Warn("command dropped unverified", slog.String("err", err.Error()), slog.Int("bytes", len(raw)))
		msg.Ack() // dropped on purpose: a re-delivery would change nothing
		return
	}
	if err := r.inboxAdd(env.Payload); err != nil {
		// Not durable: no PUBACK, so the broker delivers it again when
		// the session resumes.
		r.log.Error("command not stored: left unacknowledged", slog.String("err", err.Error()))
		return
	}
	msg.Ack()
	r.wakeLoop()
}

func (r *remoteLink) wakeLoop() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *remoteLink) kickOutbox() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *remoteLink) inboxList() ([][]byte, error) {
	raw, ok, err := r.ident.Get(kvInbox)
	if err != nil || !ok {
		return nil, err
	}
	var items [][]byte
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	return items, nil
}

func (r *remoteLink) inboxAdd(payload []byte) error {
	r.inboxMu.Lock()
	defer r.inboxMu.Unlock()
	items, err := r.inboxList()
	if err != nil {
		return err
	}
	b, err := json.Marshal(append(items, payload))
	if err != nil {
		return err
	}
	return r.ident.Put(kvInbox, b)
}

// inboxRemove removes the first item equal to payload once the loop has
// acted on it (an item that waits for a trusted clock may stay ahead of
// it).
func (r *remoteLink) inboxRemove(payload []byte) error {
	r.inboxMu.Lock()
	defer r.inboxMu.Unlock()
	items, err := r.inboxList()
	if err != nil {
		return err
	}
	for i, it := range items {
		if bytes.Equal(it, payload) {
			items = append(items[:i], items[i+1:]...)
			break
		}
	}
	if len(items) == 0 {
		return r.ident.Put(kvInbox, nil)
	}
	b, err := json.Marshal(items)
	if err != nil {
		return err
	}
	return r.ident.Put(kvInbox, b)
}

// sign wraps a payload in an envelope signed with the device key.
func (r *remoteLink) sign(payload []byte) ([]byte, error) {
	return remote.Seal(remote.DeviceKID(r.serial), r.devKey, payload)
}

// setStatus publishes the retained status now (when connected) and keeps
// it for the next connect.
func (r *remoteLink) setStatus(payload []byte) {
	r.statusMu.Lock()
	r.status = payload
	r.statusMu.Unlock()
	if r.client.IsConnectionOpen() {
		r.client.Publish(remote.StatusTopic(r.serial), 1, true, payload)
	}
}

// flusher sends the outbox whenever kicked and connected; an item leaves
// the outbox only after the broker's PUBACK.
func (r *remoteLink) flusher() {
	defer close(r.done)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		case <-t.C:
		}
		if r.client.IsConnectionOpen() {
			r.flushOnce(10 * time.Second)
		}
	}
}

func (r *remoteLink) flushOnce(wait time.Duration) {
	items, err := r.ident.Outbox()
	if err != nil {
		r.log.Error("read outbox", slog.String("err", err.Error()))
		return
	}
	for _, it := range items {
		tok := r.client.Publish(it.Topic, 1, false, it.Payload)
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			r.log.Warn("outbox publish", slog.Any("err", tok.Error()), slog.Uint64("seq", it.Seq))
			return
		}
		if err := r.ident.Done(it.Seq); err != nil {
			r.log.Error("outbox done", slog.String("err", err.Error()))
			return
		}
	}
}

package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/terminal/remote"
)

// Message is one MQTT message to ingest; Ack sends its PUBACK (paho's
// manual ack) and is called only after the message is on disk.
type Message struct {
	Topic   string
	Payload []byte
	Ack     func()
}

// Publisher publishes a command to a terminal (QoS 1, not retained).
// Failures are the re-send loop's business: every command published here
// is already stored with a next_send_at.
type Publisher interface {
	Publish(topic string, payload []byte)
}

// EventHandler handles one verified event type inside the transaction that
// records it (the activation service for activation_request). What it
// returns is published after the commit. Duplicate deliveries reach it too
// (dup is true), so it can answer a redelivered request again.
type EventHandler interface {
	HandleEvent(ctx context.Context, tx *store.Tx, ev remote.Event, dup bool, now time.Time) ([]store.Outbound, error)
}

// Options tune an Ingester.
type Options struct {
	MaxBatch int           // messages per transaction (default 256)
	Linger   time.Duration // how long a batch waits for more messages (default 2 ms)
	Queue    int           // messages buffered before Handle blocks (default 4096)
	Now      func() time.Time
}

// Stats are the ingest counters of this instance.
type Stats struct {
	Acks, Events, Statuses, Rejected, Duplicates, Batches, Retries int64
}

// Ingester verifies and records terminal messages.
type Ingester struct {
	st       *store.Store
	log      *slog.Logger
	keys     *keyCache
	pub      Publisher
	handlers map[string]EventHandler
	opts     Options
	in       chan Message

	healthy                                                        atomic.Bool
	acks, events, statuses, rejected, duplicates, batches, retries atomic.Int64
	lastErrMu                                                      sync.Mutex
	lastErr                                                        error
}

// New makes an Ingester; Run does the work.
func New(st *store.Store, pub Publisher, log *slog.Logger, o Options) *Ingester {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Linger <= 0 {
		o.Linger = 2 * time.Millisecond
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	in := &Ingester{st: st, log: log, keys: newKeyCache(st), pub: pub, handlers: map[string]EventHandler{}, opts: o,
		in: make(chan Message, o.Queue)}
	in.healthy.Store(true)
	return in
}

// OnEvent routes verified events of type typ to h.
func (in *Ingester) OnEvent(typ string, h EventHandler) { in.handlers[typ] = h }

// Forget drops a cached device key (the serial was registered again).
func (in *Ingester) Forget(serial string) { in.keys.forget(serial) }

// Handle queues a message; it blocks while the queue is full, which holds
// back paho and so the broker (flow control instead of unbounded memory).
func (in *Ingester) Handle(m Message) { in.in <- m }

// Healthy reports whether the last batch committed; Err says why not.
func (in *Ingester) Healthy() bool { return in.healthy.Load() }

// Err is the last database error, nil when healthy.
func (in *Ingester) Err() error {
	in.lastErrMu.Lock()
	defer in.lastErrMu.Unlock()
	return in.lastErr
}

// Stats returns the counters.
func (in *Ingester) Stats() Stats {
	return Stats{Acks: in.acks.Load(), Events: in.events.Load(), Statuses: in.statuses.Load(), Rejected: in.rejected.Load(),
		Duplicates: in.duplicates.Load(), Batches: in.batches.Load(), Retries: in.retries.Load()}
}

// Run takes batches off the queue until ctx ends. A batch whose
// transaction fails is retried, with backoff, until it commits: its
// messages are not acknowledged before, so the broker keeps them if this
// process dies meanwhile.
func (in *Ingester) Run(ctx context.Context) {
	batch := make([]Message, 0, in.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-in.in:
			batch = append(batch, m)
		}
		linger := time.NewTimer(in.opts.Linger)
	fill:
		for len(batch) < in.opts.MaxBatch {
			select {
			case m := <-in.in:
				batch = append(batch, m)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		backoff := 100 * time.Millisecond
		for {
			out, err := in.process(ctx, batch)
			if err == nil {
				in.setErr(nil)
				in.batches.Add(1)
				for _, m := range batch {
					if m.Ack != nil {
						m.Ack()
					}
				}
				for _, o := range out {
					in.pub.Publish(remote.CmdTopic(o.Serial), o.Envelope)
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			in.setErr(err)
			in.retries.Add(1)
			in.log.Error("ingest: database transaction failed; retrying the batch, nothing acknowledged", "messages", len(batch), "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func (in *Ingester) setErr(err error) {
	in.lastErrMu.Lock()
	in.lastErr = err
	in.lastErrMu.Unlock()
	in.healthy.Store(err == nil)
}

// process records one batch in one transaction and returns the commands
// to publish after the commit.
func (in *Ingester) process(ctx context.Context, batch []Message) ([]store.Outbound, error) {
	now := in.opts.Now().UTC()
	type item struct {
		v   verified
		rej *rejection
	}
	items := make([]item, len(batch))
	for i, m := range batch {
		v, err := in.keys.verify(ctx, m.Topic, m.Payload, now)
		var rej *rejection
		switch {
		case errors.As(err, &rej):
			items[i] = item{v: v, rej: rej}
		case err != nil:
			return nil, err
		default:
			items[i] = item{v: v}
		}
	}
	// Rows are locked in serial order, the same in every instance's
	// batches, so two instances' transactions do not deadlock; the sort is
	// stable, so one terminal's messages keep their order.
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(items[a].v.serial, items[b].v.serial) })
	var out []store.Outbound
	var acks, events, statuses, rejected, dups int64
	err := in.st.InTx(ctx, func(tx *store.Tx) error {
		out, acks, events, statuses, rejected, dups = nil, 0, 0, 0, 0, 0
		for _, i := range order {
			it := items[i]
			rej := it.rej
			if rej == nil {
				o, dup, err := in.record(ctx, tx, it.v, now)
				switch {
				case errors.As(err, &rej):
				case err != nil:
					return err
				default:
					out = append(out, o...)
					if dup {
						dups++
					}
					switch it.v.kind {
					case remote.KindAck:
						acks++
					case remote.KindEvt:
						events++
					case remote.KindStatus:
						statuses++
					}
				}
			}
			if rej != nil {
				rejected++
				_, kind, _ := remote.ParseTopic(batch[i].Topic)
				if err := tx.AddReject(ctx, store.Reject{At: now, Topic: batch[i].Topic, Kind: kind, Reason: rej.reason,
					Detail: rej.detail, Size: len(batch[i].Payload)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	in.acks.Add(acks)
	in.events.Add(events)
	in.statuses.Add(statuses)
	in.rejected.Add(rejected)
	in.duplicates.Add(dups)
	for _, it := range items {
		if it.rej != nil {
			in.log.Warn("ingest: message refused, not taken as truth", "serial", it.v.serial, "kind", it.v.kind, "reason", it.rej.reason, "detail", it.rej.detail)
		}
	}
	return out, nil
}

// record stores one verified message. A *rejection is a message refused
// for what it says (an ack from the wrong terminal); other errors abort the
// batch.
func (in *Ingester) record(ctx context.Context, tx *store.Tx, v verified, now time.Time) ([]store.Outbound, bool, error) {
	switch v.kind {
	case remote.KindStatus:
		return nil, false, tx.ApplyStatus(ctx, v.serial, v.status, now)
	case remote.KindAck:
		a := v.ack
		o, err := tx.ApplyAck(ctx, a.CmdID, v.serial, a.State, a.Reason, resultText(a.Result), a.At, v.envelope, now)
		if err != nil {
			var target *store.WrongTargetError
			if errors.As(err, &target) {
				return nil, false, reject(RejWrongTarget, "%v", err)
			}
			return nil, false, err
		}
		if o.Duplicate || !o.Known || o.From == o.To {
			return nil, o.Duplicate, tx.Seen(ctx, v.serial, now)
		}
		// What a final ack teaches about the terminal's state.
		switch {
		case o.Type == string(remote.TypeUnbind) && a.State == remote.AckSucceeded:
			err = tx.SetTerminalState(ctx, v.serial, "unactivated", "", "", "", "unbind "+a.CmdID+" succeeded", now)
		case o.Type == string(remote.TypeUnbind) && a.State == remote.AckAccepted:
			err = tx.SetTerminalState(ctx, v.serial, "unbinding", "", "", "", "unbind "+a.CmdID+" accepted", now)
		case o.Type == string(remote.TypeProvision) && (a.State == remote.AckFailed || a.State == remote.AckRejected):
			err = tx.SetTerminalState(ctx, v.serial, "unactivated", "", "", "", "provision "+a.CmdID+" "+a.State, now)
		default:
			err = tx.Seen(ctx, v.serial, now)
		}
		return nil, false, err
	case remote.KindEvt:
		e := v.event
		fresh, err := tx.AddEvent(ctx, v.serial, e.ID, e.Type, e.At, v.envelope, now)
		if err != nil {
			return nil, false, err
		}
		if h := in.handlers[e.Type]; h != nil {
			out, err := h.HandleEvent(ctx, tx, e, !fresh, now)
			return out, !fresh, err
		}
		if !fresh {
			return nil, true, nil
		}
		switch e.Type {
		case remote.EvtActivated:
			var d struct {
				TID string `json:"tid"`
			}
			_ = json.Unmarshal(e.Data, &d)
			err = tx.SetTerminalState(ctx, v.serial, "active", d.TID, "", "", "activated "+e.ID, now)
		case remote.EvtUnbound:
			err = tx.SetTerminalState(ctx, v.serial, "unactivated", "", "", "", "unbound "+e.ID, now)
		case remote.EvtTamper:
			err = tx.SetTerminalState(ctx, v.serial, "tampered", "", "", "", "tamper "+e.ID, now)
		default:
			// Stored; HQ ignores event types it does not know (remote.md).
			err = tx.Seen(ctx, v.serial, now)
		}
		return nil, false, err
	}
	return nil, false, nil
}

func resultText(r json.RawMessage) string {
	if len(r) == 0 || string(r) == "null" || string(r) == "{}" {
		return ""
	}
	return string(r)
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/posagent/posagent/iso8583/acqmsg"
	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/terminal"
)

// acquirerSE is what the acquirer worker asks of the secure element: the
// MACs of requests and answers, and the sign-in's working keys.
type acquirerSE interface {
	acqmsg.MACer
	InstallWorkingKeys(keyBlock []byte) error
}

// acquirerQueue is how many requests may wait for the worker. The core
// keeps one exchange in flight; only one it abandoned (a tamper) can still
// be running when it asks for the next.
const acquirerQueue = 4

// errAcquirerBusy answers a request the worker could not even queue: it
// never left, so nothing is owed.
var errAcquirerBusy = errors.New("acquirer link busy: request not sent")

// acquirerWorker does the exchanges with the acquirer, one at a time, on
// one goroutine that owns the message codec and the frame buffers
// (exchanger): requests come in over a channel, replies go out to the event
// loop as terminal.AcquirerReply events. An exchange the core abandoned is
// never left running beside the next one: the next waits for it.
type acquirerWorker struct {
	reqs   chan terminal.Request
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// startAcquirer starts the worker; replies receives its events until stop.
func startAcquirer(se acquirerSE, timeout time.Duration, log *slog.Logger, replies chan<- terminal.Event) *acquirerWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &acquirerWorker{reqs: make(chan terminal.Request, acquirerQueue), cancel: cancel, done: make(chan struct{})}
	x := &exchanger{se: se, timeout: timeout, log: log}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-ctx.Done():
				return
			case q := <-w.reqs:
				r := x.exchange(ctx, q)
				if ctx.Err() != nil {
					// Stopped: the exchange was cut short and the loop
					// reads no more replies.
					return
				}
				select {
				case replies <- r:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return w
}

// submit queues q without blocking the event loop; false when the queue is
// full.
func (w *acquirerWorker) submit(q terminal.Request) bool {
	if w == nil { // stopped: the daemon is closing
		return false
	}
	select {
	case w.reqs <- q:
		return true
	default:
		return false
	}
}

// stop cancels the exchange in flight and waits for the worker to end. An
// exchange cut short owes what it owed: its reversal image is on disk and
// the next boot sends it.
func (w *acquirerWorker) stop() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
}

// exchanger is the worker goroutine's own state: nothing else holds it.
type exchanger struct {
	se      acquirerSE
	timeout time.Duration
	log     *slog.Logger

	codec   acqmsg.Codec
	out, in [link.MaxFrame]byte
}

// exchange builds q, sends it, reads the answer and installs a sign-in's
// working keys.
func (x *exchanger) exchange(ctx context.Context, q terminal.Request) terminal.AcquirerReply {
	n, err := x.codec.Build(x.out[:], q, x.se)
	m := 0
	if err == nil {
		c := link.Client{Addr: q.Merchant.AcquirerAddr, Timeout: x.timeout, DialTimeout: link.DefaultDialTimeout}
		if q.Merchant.AcquirerTLS {
			// The server name is the address's host (link.Client).
			c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		m, err = c.Exchange(ctx, x.out[:n], x.in[:])
	}
	a := x.codec.Answer(q, x.in[:m], err, x.se)
	if a.WorkingKeys != nil {
		if err := x.se.InstallWorkingKeys(a.WorkingKeys); err != nil {
			a.Reply.Resp.KeysErr = fmt.Errorf("install working keys: %w", err)
		}
	}
	if a.Requirement != 0 && !a.Reply.Resp.SignInAgain {
		x.log.Info("acquirer processing requirement ignored", slog.String("msg", q.Kind.String()), slog.Int("requirement", int(a.Requirement)))
	}
	return a.Reply
}

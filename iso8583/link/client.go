package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults used when a Client leaves a duration at zero.
const (
	// DefaultTimeout is the CUP practice of 60 s for a host answer.
	DefaultTimeout     = 60 * time.Second
	DefaultDialTimeout = 10 * time.Second
)

// Client exchanges frames with the acquirer host. It opens a new connection
// for every exchange and closes it afterwards: acquirer.md allows one request
// in flight per TCP connection and lets the terminal open a new connection per
// exchange, and a fresh connection means no stale answer of an earlier,
// abandoned exchange can ever be read as the answer to this one.
//
// A Client is safe for concurrent use (each exchange has its own connection)
// and its zero durations mean the defaults.
type Client struct {
	Addr string      // host:port of the acquirer
	TLS  *tls.Config // nil: plain TCP; ServerName defaults to Addr's host
	// Timeout bounds one exchange after the connection is up: writing the
	// request and reading the whole answer.
	Timeout time.Duration
	// DialTimeout bounds the TCP connect plus the TLS handshake.
	DialTimeout time.Duration
	// Dial replaces the net.Dialer when set (proxies, tests). TLS, when
	// configured, is layered on top of the connection it returns.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Error is the error of a failed Exchange.
type Error struct {
	Op   string // "request" (bad request frame), "dial", "write" or "read"
	Addr string
	// Written is true when the request bytes may have reached the host: the
	// host may have processed it, so a financial request must be reversed.
	Written bool
	// Timeout is true when the failure is a deadline (Client.Timeout,
	// DialTimeout or the context's deadline).
	Timeout bool
	// NotAFrame is true when the host answered with a length value no
	// frame has (zero, under MinBody, over MaxBody): refused before its
	// body was read. The host did answer, with something that does not
	// decode (acquirer.md: reversal reason 06, not 98).
	NotAFrame bool
	Err       error
}

func (e *Error) Error() string {
	s := "link " + e.Op + " " + e.Addr
	if e.Written {
		s += " (request written)"
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// RequestWritten reports whether err is an exchange failure after which the
// request may have reached the host: no answer in time, or a connection
// broken after (or while) the request was written. The caller then owes a
// reversal for a financial request. It is false for nil, for a failed dial
// and for any error not from Exchange.
func RequestWritten(err error) bool {
	var le *Error
	return errors.As(err, &le) && le.Written
}

// AnswerNotFrame reports whether err is an exchange whose answer was not a
// frame: its length value was refused (Error.NotAFrame).
func AnswerNotFrame(err error) bool {
	var le *Error
	return errors.As(err, &le) && le.NotAFrame
}

// IsTimeout reports whether err is an exchange that failed on a deadline.
func IsTimeout(err error) bool {
	var le *Error
	return errors.As(err, &le) && le.Timeout
}

// longAgo is a deadline in the past, used to unblock IO when ctx ends.
var longAgo = time.Unix(1, 0)

// Exchange sends req (a whole frame, length prefix included) and reads the
// answer into resp, returning the answer's size (length prefix included;
// resp[:n] is the frame). resp should be MaxFrame bytes. Errors are *Error.
func (c *Client) Exchange(ctx context.Context, req []byte, resp []byte) (int, error) {
	if err := CheckFrame(req); err != nil {
		return 0, &Error{Op: "request", Addr: c.Addr, Err: err}
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return 0, &Error{Op: "dial", Addr: c.Addr, Timeout: isTimeout(err), Err: err}
	}
	defer conn.Close()

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// A host that already closed the connection (overloaded, refusing this
	// terminal) has not seen the request: find that out before writing, so
	// the caller does not owe a reversal for a request that never left.
	if err := probeClosed(conn, c.TLS != nil); err != nil {
		return 0, &Error{Op: "write", Addr: c.Addr, Err: c.ctxErr(ctx, err)}
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return 0, &Error{Op: "write", Addr: c.Addr, Err: err}
	}
	// Cancelling ctx unblocks the IO below by moving the deadline to the
	// past; registered after the last SetDeadline so nothing undoes it (an
	// already finished ctx fires it at once).
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(longAgo) })
	defer stop()
	if err := ctx.Err(); err != nil {
		return 0, &Error{Op: "write", Addr: c.Addr, Timeout: ctxTimeout(ctx), Err: err}
	}

	n, err := conn.Write(req)
	if err != nil {
		// n > 0: part of the request is in the network, the host may have it
		// all (the kernel may have sent more than it reported). n == 0: the
		// kernel took nothing (for TLS at most a partial record left, which
		// the host cannot decrypt).
		return 0, &Error{Op: "write", Addr: c.Addr, Written: n > 0, Timeout: timedOut(ctx, err), Err: c.ctxErr(ctx, err)}
	}
	m, err := ReadFrame(conn, resp)
	if err != nil {
		notFrame := errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrFrameTooShort)
		return 0, &Error{Op: "read", Addr: c.Addr, Written: true, Timeout: timedOut(ctx, err), NotAFrame: notFrame, Err: c.ctxErr(ctx, err)}
	}
	return m, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	dt := c.DialTimeout
	if dt <= 0 {
		dt = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, dt)
	defer cancel()
	var conn net.Conn
	var err error
	if c.Dial != nil {
		conn, err = c.Dial(dctx, "tcp", c.Addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", c.Addr)
	}
	if err != nil {
		return nil, err
	}
	if c.TLS == nil {
		return conn, nil
	}
	cfg := c.TLS
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls server name from %q: %w", c.Addr, err)
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// timedOut: a cancelled ctx also surfaces as an IO timeout (its AfterFunc
// moved the deadline), so the ctx decides when it has ended.
func timedOut(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return ctxTimeout(ctx)
	}
	return isTimeout(err)
}

func ctxTimeout(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// ctxErr names the context's end as the cause when it unblocked the IO.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

//go:build unix

package link

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// probeClosed tells whether the host has already closed (or reset) the
// connection, without waiting and without consuming anything: a
// non-blocking MSG_PEEK on the socket. Connections that are not sockets
// (a custom Dial) fall back to a short read with a deadline.
//
// Pending bytes are normal under TLS (TLS 1.3 session tickets arrive after
// the handshake); on plain TCP they mean the host spoke before the request,
// a protocol error.
func probeClosed(conn net.Conn, isTLS bool) error {
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return probeByDeadline(conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return probeByDeadline(conn)
	}
	var n int
	var rerr error
	var b [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait: this is a probe
	}); err != nil {
		return fmt.Errorf("probe connection: %w", err)
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) || errors.Is(rerr, syscall.EINTR):
		return nil
	case rerr != nil:
		return fmt.Errorf("connection closed by the host before the request was written: %w", rerr)
	case n == 0:
		return errors.New("connection closed by the host before the request was written: EOF")
	case isTLS:
		return nil
	default:
		return errors.New("host sent data before the request")
	}
}

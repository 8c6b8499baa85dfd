package link

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// probeWait is how long probeByDeadline waits on a live connection. It must
// be in the future: Go's poller refuses to even try a read whose deadline
// has already passed.
const probeWait = time.Millisecond

// probeByDeadline is the portable probe: a read with a deadline about to
// pass. A live, silent connection times out; a closed one reports EOF or a
// reset. It costs probeWait per exchange and may consume a byte the host
// sent before the request (a protocol error anyway).
func probeByDeadline(conn net.Conn) error {
	if err := conn.SetReadDeadline(time.Now().Add(probeWait)); err != nil {
		return err
	}
	var b [1]byte
	n, err := conn.Read(b[:])
	switch {
	case n > 0:
		return errors.New("host sent data before the request")
	case err == nil || isTimeout(err):
		return nil
	default:
		return fmt.Errorf("connection closed by the host before the request was written: %w", err)
	}
}

// Package mqttcap caps the size of the MQTT packets a client reads: a
// net.Conn wrapper, put under paho's reader, that parses each fixed header
// (MQTT 3.1.1 §2.2) as the bytes arrive and never lets a packet over the
// limit into memory.
//
// An oversized PUBLISH is not a reason to drop the connection: with QoS 1
// and a persistent session the broker would deliver it again on every
// reconnect, and the terminal would never get past it to the commands
// queued behind. The wrapper reads the PUBLISH's topic and packet id,
// discards its payload as it streams in (a few KiB of buffer, whatever its
// size), and hands the client the same PUBLISH with an empty payload. The
// client then acknowledges it like any message it refuses, and the broker
// forgets it. Any other packet over the limit, a topic over the limit or a
// malformed length ends the connection (a broker never sends those).
package mqttcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// packetPublish is the PUBLISH control packet type (MQTT 3.1.1 §2.2.1).
const packetPublish = 3

// ErrMalformed is returned by Read for a fixed header that is not MQTT.
var ErrMalformed = errors.New("mqttcap: malformed MQTT fixed header")

// ErrTooLarge is returned by Read for a packet over the limit that is not
// a PUBLISH the wrapper can stand in for.
var ErrTooLarge = errors.New("mqttcap: MQTT packet over the size limit")

// Refused describes an oversized PUBLISH that was discarded unread.
type Refused struct {
	Topic string
	Size  int // the packet's remaining length, in bytes
}

// Conn is a net.Conn whose reads never carry an MQTT packet whose remaining
// length is over Limit. It must see the connection's bytes from the first
// one on. Writes pass through.
type Conn struct {
	net.Conn
	limit   int
	refused func(Refused)
	br      *bufio.Reader
	pending []byte // bytes to hand out before reading on: a header, or a stand-in PUBLISH
	body    int    // bytes of the current packet still to pass through
}

// Wrap caps the packets read from c at limit bytes of remaining length
// (everything after the fixed header). refused, when not nil, is called
// (on the reading goroutine) for every PUBLISH discarded.
func Wrap(c net.Conn, limit int, refused func(Refused)) *Conn {
	return &Conn{Conn: c, limit: limit, refused: refused, br: bufio.NewReaderSize(c, 4096)}
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		if c.body > 0 {
			n, err := c.br.Read(p[:min(len(p), c.body)])
			c.body -= n
			return n, err
		}
		if err := c.next(); err != nil {
			return 0, err
		}
	}
}

// next reads the next packet's fixed header and decides: pass the packet
// through, or stand in for an oversized PUBLISH.
func (c *Conn) next() error {
	first, err := c.br.ReadByte()
	if err != nil {
		return err
	}
	header := []byte{first}
	remaining, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return ErrMalformed // the length takes at most 4 bytes
		}
		b, err := c.br.ReadByte()
		if err != nil {
			return noEOF(err)
		}
		header = append(header, b)
		remaining += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	if remaining <= c.limit {
		c.pending, c.body = header, remaining
		return nil
	}
	if first>>4 != packetPublish {
		return fmt.Errorf("%w: packet type %d, %d bytes", ErrTooLarge, first>>4, remaining)
	}
	return c.standIn(first, remaining)
}

// standIn reads an oversized PUBLISH's variable header, discards its
// payload and queues the same PUBLISH with an empty payload.
func (c *Conn) standIn(first byte, remaining int) error {
	var tl [2]byte
	if _, err := io.ReadFull(c.br, tl[:]); err != nil {
		return noEOF(err)
	}
	topicLen := int(binary.BigEndian.Uint16(tl[:]))
	qos := (first >> 1) & 3
	varLen := 2 + topicLen
	if qos > 0 {
		varLen += 2 // packet identifier
	}
	if topicLen > c.limit || varLen > remaining {
		return fmt.Errorf("%w: PUBLISH with a %d-byte topic", ErrTooLarge, topicLen)
	}
	rest := make([]byte, varLen-2)
	if _, err := io.ReadFull(c.br, rest); err != nil {
		return noEOF(err)
	}
	if _, err := io.CopyN(io.Discard, c.br, int64(remaining-varLen)); err != nil {
		return noEOF(err)
	}
	if c.refused != nil {
		c.refused(Refused{Topic: string(rest[:topicLen]), Size: remaining})
	}
	out := append([]byte{first}, encodeLength(varLen)...)
	out = append(out, tl[:]...)
	c.pending = append(out, rest...)
	return nil
}

// encodeLength is the MQTT variable-length encoding of n.
func encodeLength(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

// noEOF turns an EOF inside a packet into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

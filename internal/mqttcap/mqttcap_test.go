package mqttcap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// readerConn is a net.Conn that reads from r (the broker's side of the
// stream) and writes nowhere.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func publish(topic string, qos byte, id uint16, payload []byte) []byte {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Qos, p.MessageID, p.Payload = topic, qos, id, payload
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func pingresp() []byte {
	var b bytes.Buffer
	_ = packets.NewControlPacket(packets.Pingresp).Write(&b)
	return b.Bytes()
}

func TestSmallPacketsPassUnchanged(t *testing.T) {
	stream := bytes.Join([][]byte{publish("pos/v1/PA-1/cmd", 1, 7, bytes.Repeat([]byte("x"), 1000)), pingresp(),
		publish("pos/v1/PA-1/cmd", 0, 0, []byte("{}"))}, nil)
	c := Wrap(readerConn{r: bytes.NewReader(stream)}, 1024+64, nil)
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, stream) {
		t.Fatalf("read %d bytes, %v; want the %d bytes unchanged", len(got), err, len(stream))
	}
}

func TestOversizedPublishStandsIn(t *testing.T) {
	big := publish("pos/v1/PA-1/cmd", 1, 42, bytes.Repeat([]byte("A"), 100_000))
	after := publish("pos/v1/PA-1/cmd", 1, 43, []byte(`{"ok":1}`))
	var refused []Refused
	c := Wrap(readerConn{r: io.MultiReader(bytes.NewReader(big), bytes.NewReader(after))}, 16<<10,
		func(r Refused) { refused = append(refused, r) })
	p, err := packets.ReadPacket(c)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := p.(*packets.PublishPacket)
	if !ok || pub.TopicName != "pos/v1/PA-1/cmd" || pub.MessageID != 42 || pub.Qos != 1 || len(pub.Payload) != 0 {
		t.Fatalf("stand-in %v", p)
	}
	if len(refused) != 1 || refused[0].Topic != "pos/v1/PA-1/cmd" || refused[0].Size != len(big)-4 {
		t.Fatalf("refused %+v", refused)
	}
	p, err = packets.ReadPacket(c)
	if pub, ok := p.(*packets.PublishPacket); err != nil || !ok || pub.MessageID != 43 || string(pub.Payload) != `{"ok":1}` {
		t.Fatalf("the packet after the oversized one: %v, %v", p, err)
	}
	// Retain and DUP flags stay on the stand-in.
	flagged := publish("t", 1, 9, make([]byte, 5000))
	flagged[0] |= 0x08 | 0x01
	p, err = packets.ReadPacket(Wrap(readerConn{r: bytes.NewReader(flagged)}, 100, nil))
	if pub, ok := p.(*packets.PublishPacket); err != nil || !ok || !pub.Dup || !pub.Retain || pub.MessageID != 9 {
		t.Fatalf("flags lost: %v %v", p, err)
	}
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestHugePublishNeverInMemory: a 150 MB PUBLISH goes through the wrapper
// with a few KiB allocated.
func TestHugePublishNeverInMemory(t *testing.T) {
	const size = 150 << 20
	hdr := publish("pos/v1/PA-1/cmd", 1, 1, nil)
	// Rewrite the length for the huge payload that follows from zeros.
	varHdr := hdr[2:]
	head := append([]byte{hdr[0]}, encodeLength(len(varHdr)+size)...)
	head = append(head, varHdr...)
	stream := io.MultiReader(bytes.NewReader(head), io.LimitReader(zeros{}, size), bytes.NewReader(pingresp()))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := Wrap(readerConn{r: stream}, 17<<10, nil)
	p, err := packets.ReadPacket(c)
	if err != nil {
		t.Fatal(err)
	}
	if pub := p.(*packets.PublishPacket); len(pub.Payload) != 0 {
		t.Fatalf("payload of %d bytes handed on", len(pub.Payload))
	}
	if _, err := packets.ReadPacket(c); err != nil {
		t.Fatalf("packet after: %v", err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("%d bytes allocated for a %d-byte PUBLISH", alloc, size)
	}
}

func TestRefusesWhatItCannotStandIn(t *testing.T) {
	var sub bytes.Buffer
	s := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
	s.MessageID, s.ReturnCodes = 1, bytes.Repeat([]byte{1}, 300)
	_ = s.Write(&sub)
	if _, err := io.ReadAll(Wrap(readerConn{r: bytes.NewReader(sub.Bytes())}, 100, nil)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized SUBACK: %v, want ErrTooLarge", err)
	}
	longTopic := publish(string(bytes.Repeat([]byte("t"), 500)), 0, 0, make([]byte, 10))
	if _, err := io.ReadAll(Wrap(readerConn{r: bytes.NewReader(longTopic)}, 100, nil)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("topic over the limit: %v, want ErrTooLarge", err)
	}
	bad := []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}
	if _, err := io.ReadAll(Wrap(readerConn{r: bytes.NewReader(bad)}, 100, nil)); !errors.Is(err, ErrMalformed) {
		t.Errorf("5-byte length: %v, want ErrMalformed", err)
	}
	cut := publish("t", 1, 1, make([]byte, 500))[:300]
	if _, err := io.ReadAll(Wrap(readerConn{r: bytes.NewReader(cut)}, 100, nil)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut inside the discarded payload: %v", err)
	}
}

package link

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// frame builds a frame of body size n (TPDU first, then filler).
func frame(n int, fill byte) []byte {
	f := make([]byte, 2+n)
	binary.BigEndian.PutUint16(f, uint16(n))
	copy(f[2:], []byte{0x60, 0x00, 0x03, 0x00, 0x00})
	for i := 7; i < len(f); i++ {
		f[i] = fill
	}
	return f
}

func TestReadFrame(t *testing.T) {
	ok := frame(30, 0xAA)
	tests := []struct {
		name    string
		in      []byte
		buf     int
		wantN   int
		wantErr error
	}{
		{"exact", ok, MaxFrame, 32, nil},
		{"trailing bytes stay unread", append(bytes.Clone(ok), 1, 2, 3), MaxFrame, 32, nil},
		{"max", frame(MaxBody, 1), MaxFrame, MaxFrame, nil},
		{"too large", []byte{0x08, 0x01}, MaxFrame, 0, ErrFrameTooLarge},
		{"too short", []byte{0x00, 0x14}, MaxFrame, 0, ErrFrameTooShort},
		{"zero", []byte{0x00, 0x00}, MaxFrame, 0, ErrFrameTooShort},
		{"buffer small", ok, 20, 0, ErrShortBuffer},
		{"empty stream", nil, MaxFrame, 0, io.EOF},
		{"cut in prefix", []byte{0x00}, MaxFrame, 0, io.ErrUnexpectedEOF},
		{"cut in body", ok[:20], MaxFrame, 0, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, tc.buf)
			n, err := ReadFrame(bytes.NewReader(tc.in), buf)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n != tc.wantN {
				t.Fatalf("n = %d, want %d", n, tc.wantN)
			}
			if err == nil && !bytes.Equal(buf[:n], tc.in[:n]) {
				t.Errorf("frame bytes differ")
			}
		})
	}
}

func TestCheckFrameAndPutLength(t *testing.T) {
	f := make([]byte, 40)
	if err := CheckFrame(f); !errors.Is(err, ErrBadLength) {
		t.Errorf("zero prefix: %v", err)
	}
	if err := PutLength(f); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(f) != 38 {
		t.Errorf("PutLength wrote %X", f[:2])
	}
	if err := CheckFrame(f); err != nil {
		t.Errorf("CheckFrame: %v", err)
	}
	if err := PutLength(make([]byte, MaxFrame+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	if err := PutLength(make([]byte, 10)); !errors.Is(err, ErrFrameTooShort) {
		t.Errorf("undersized: %v", err)
	}
	var w bytes.Buffer
	if err := WriteFrame(&w, f); err != nil || !bytes.Equal(w.Bytes(), f) {
		t.Errorf("WriteFrame: %v", err)
	}
	if err := WriteFrame(&w, f[:30]); err == nil {
		t.Errorf("WriteFrame accepted a frame with a wrong prefix")
	}
}

// server runs handle on every accepted connection of a 127.0.0.1 listener.
func server(t *testing.T, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echoHost answers every frame with the same frame, last filler byte changed.
func echoHost(c net.Conn) {
	buf := make([]byte, MaxFrame)
	for {
		n, err := ReadFrame(c, buf)
		if err != nil {
			return
		}
		buf[n-1] ^= 0xFF
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func TestExchange(t *testing.T) {
	req := frame(60, 0x11)
	want := bytes.Clone(req)
	want[len(want)-1] ^= 0xFF

	silent := func(c net.Conn) {
		buf := make([]byte, MaxFrame)
		ReadFrame(c, buf)
		io.Copy(io.Discard, c) // hold the connection until the client gives up
	}
	tests := []struct {
		name        string
		handle      func(net.Conn)
		wantWritten bool
		wantTimeout bool
		wantErr     error
		notFrame    bool
		substr      string
	}{
		{name: "answer", handle: echoHost},
		{name: "no answer", handle: silent, wantWritten: true, wantTimeout: true},
		{name: "closed after write", handle: func(c net.Conn) {
			buf := make([]byte, MaxFrame)
			ReadFrame(c, buf)
		}, wantWritten: true, wantErr: io.EOF},
		{name: "closed mid answer", handle: func(c net.Conn) {
			buf := make([]byte, MaxFrame)
			n, _ := ReadFrame(c, buf)
			c.Write(buf[:n/2])
		}, wantWritten: true, wantErr: io.ErrUnexpectedEOF},
		{name: "oversized answer", handle: func(c net.Conn) {
			buf := make([]byte, MaxFrame)
			ReadFrame(c, buf)
			c.Write([]byte{0x09, 0x00})
		}, wantWritten: true, wantErr: ErrFrameTooLarge, notFrame: true},
		{name: "undersized answer", handle: func(c net.Conn) {
			buf := make([]byte, MaxFrame)
			ReadFrame(c, buf)
			c.Write([]byte{0x00, 0x05, 1, 2, 3, 4, 5})
		}, wantWritten: true, wantErr: ErrFrameTooShort, notFrame: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := server(t, listen(t), tc.handle)
			c := &Client{Addr: addr, Timeout: 200 * time.Millisecond}
			resp := make([]byte, MaxFrame)
			n, err := c.Exchange(context.Background(), req, resp)
			wantOK := !tc.wantWritten && tc.wantErr == nil
			if wantOK {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if !bytes.Equal(resp[:n], want) {
					t.Fatalf("answer %X, want %X", resp[:n], want)
				}
				return
			}
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("err = %v (%T), want *link.Error", err, err)
			}
			if le.Written != tc.wantWritten || RequestWritten(err) != tc.wantWritten {
				t.Errorf("Written = %v, want %v (%v)", le.Written, tc.wantWritten, err)
			}
			if le.Timeout != tc.wantTimeout || IsTimeout(err) != tc.wantTimeout {
				t.Errorf("Timeout = %v, want %v (%v)", le.Timeout, tc.wantTimeout, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if le.NotAFrame != tc.notFrame || AnswerNotFrame(err) != tc.notFrame {
				t.Errorf("NotAFrame = %v, want %v (%v)", le.NotAFrame, tc.notFrame, err)
			}
			if le.Op != "read" {
				t.Errorf("Op = %q, want read", le.Op)
			}
			if n != 0 {
				t.Errorf("n = %d with an error", n)
			}
		})
	}
}

// TestExchangeNotAFrame: an answer whose length value no frame has (zero,
// or over 2,048) is refused as soon as its two length bytes are read. The
// host holds the connection open after them, with a body on its way for the
// oversized one; reading that body would end only at the one-minute
// timeout, so an error that is not a timeout proves the body was not read.
func TestExchangeNotAFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix []byte
		want   error
	}{
		{"zero length", []byte{0x00, 0x00}, ErrFrameTooShort},
		{"length 2049", []byte{0x08, 0x01}, ErrFrameTooLarge},
		{"length 65535", []byte{0xFF, 0xFF}, ErrFrameTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := server(t, listen(t), func(c net.Conn) {
				buf := make([]byte, MaxFrame)
				if _, err := ReadFrame(c, buf); err != nil {
					return
				}
				c.Write(tc.prefix)
				c.Write(bytes.Repeat([]byte{0x30}, 100)) // the start of a body
				io.Copy(io.Discard, c)                   // until the client closes
			})
			c := &Client{Addr: addr, Timeout: time.Minute}
			_, err := c.Exchange(context.Background(), frame(30, 0x11), make([]byte, MaxFrame))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !AnswerNotFrame(err) || !RequestWritten(err) || IsTimeout(err) {
				t.Errorf("NotAFrame %v Written %v Timeout %v, want true true false (%v)",
					AnswerNotFrame(err), RequestWritten(err), IsTimeout(err), err)
			}
		})
	}
	if AnswerNotFrame(nil) || AnswerNotFrame(io.EOF) || AnswerNotFrame(&Error{Op: "read", Written: true, Err: io.EOF}) {
		t.Error("AnswerNotFrame true for an error that is no refused frame")
	}
}

func TestExchangeRefused(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	c := &Client{Addr: addr, Timeout: time.Second, DialTimeout: time.Second}
	_, err := c.Exchange(context.Background(), frame(30, 0), make([]byte, MaxFrame))
	var le *Error
	if !errors.As(err, &le) || le.Op != "dial" {
		t.Fatalf("err = %v, want a dial *link.Error", err)
	}
	if RequestWritten(err) {
		t.Errorf("refused dial reported as written")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address", err)
	}
}

// The host accepts and closes before the terminal writes: the request never
// left, so no reversal is owed.
func TestExchangeClosedBeforeWrite(t *testing.T) {
	closed := make(chan struct{})
	addr := server(t, listen(t), func(c net.Conn) {
		c.Close()
		close(closed)
	})
	c := &Client{
		Addr:    addr,
		Timeout: time.Second,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err == nil {
				<-closed
				time.Sleep(20 * time.Millisecond) // let the FIN arrive
			}
			return conn, err
		},
	}
	_, err := c.Exchange(context.Background(), frame(30, 0), make([]byte, MaxFrame))
	var le *Error
	if !errors.As(err, &le) || le.Op != "write" {
		t.Fatalf("err = %v, want a write *link.Error", err)
	}
	if le.Written || RequestWritten(err) {
		t.Errorf("closed-before-write reported as written: %v", err)
	}
}

func TestExchangeBadRequest(t *testing.T) {
	c := &Client{Addr: "127.0.0.1:1"}
	_, err := c.Exchange(context.Background(), []byte{0x00, 0x30, 1, 2}, make([]byte, MaxFrame))
	var le *Error
	if !errors.As(err, &le) || le.Op != "request" || le.Written {
		t.Fatalf("err = %v, want an unwritten request *link.Error", err)
	}
}

func TestExchangeContextCancel(t *testing.T) {
	got := make(chan struct{})
	addr := server(t, listen(t), func(c net.Conn) {
		buf := make([]byte, MaxFrame)
		ReadFrame(c, buf)
		close(got)
		io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-got; cancel() }()
	c := &Client{Addr: addr, Timeout: 10 * time.Second}
	start := time.Now()
	_, err := c.Exchange(ctx, frame(30, 0), make([]byte, MaxFrame))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !RequestWritten(err) {
		t.Errorf("cancel after the write not reported as written")
	}
	if IsTimeout(err) {
		t.Errorf("cancel reported as timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}

	// A context already done never sends the request.
	_, err = c.Exchange(ctx, frame(30, 0), make([]byte, MaxFrame))
	if err == nil || RequestWritten(err) {
		t.Errorf("done context: err = %v, written = %v", err, RequestWritten(err))
	}
}

func TestExchangeShortResponseBuffer(t *testing.T) {
	addr := server(t, listen(t), echoHost)
	c := &Client{Addr: addr, Timeout: time.Second}
	_, err := c.Exchange(context.Background(), frame(60, 0), make([]byte, 30))
	if !errors.Is(err, ErrShortBuffer) || !RequestWritten(err) {
		t.Fatalf("err = %v, want ErrShortBuffer after the write", err)
	}
}

// testCert makes a self-signed ECDSA certificate for 127.0.0.1.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "acquirer-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestExchangeTLS(t *testing.T) {
	cert, pool := testCert(t)
	ln := tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{cert}})
	addr := server(t, ln, echoHost)
	req := frame(100, 0x22)
	want := bytes.Clone(req)
	want[len(want)-1] ^= 0xFF

	c := &Client{Addr: addr, TLS: &tls.Config{RootCAs: pool}, Timeout: 2 * time.Second}
	for i := range 3 { // a new connection (and handshake) per exchange
		resp := make([]byte, MaxFrame)
		n, err := c.Exchange(context.Background(), req, resp)
		if err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
		if !bytes.Equal(resp[:n], want) {
			t.Fatalf("exchange %d: answer %X", i, resp[:n])
		}
	}

	// An untrusted certificate fails the dial: nothing was written.
	bad := &Client{Addr: addr, TLS: &tls.Config{RootCAs: x509.NewCertPool()}, Timeout: 2 * time.Second}
	_, err := bad.Exchange(context.Background(), req, make([]byte, MaxFrame))
	var le *Error
	if !errors.As(err, &le) || le.Op != "dial" || le.Written {
		t.Fatalf("untrusted cert: err = %v", err)
	}

	// TLS host that never answers: timeout after the write.
	silentLn := tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{cert}})
	silentAddr := server(t, silentLn, func(c net.Conn) {
		buf := make([]byte, MaxFrame)
		ReadFrame(c, buf)
		io.Copy(io.Discard, c)
	})
	sc := &Client{Addr: silentAddr, TLS: &tls.Config{RootCAs: pool}, Timeout: 200 * time.Millisecond}
	_, err = sc.Exchange(context.Background(), req, make([]byte, MaxFrame))
	if !RequestWritten(err) || !IsTimeout(err) {
		t.Fatalf("TLS no answer: err = %v, written %v timeout %v", err, RequestWritten(err), IsTimeout(err))
	}
}

func BenchmarkExchangeLoopback(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); echoHost(c) }()
		}
	}()
	c := &Client{Addr: ln.Addr().String(), Timeout: time.Second}
	req := frame(140, 0x33)
	resp := make([]byte, MaxFrame)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Exchange(context.Background(), req, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// A Dial hook returning a connection that is not a socket (net.Pipe) uses the
// portable deadline probe.
func TestExchangeNonSocketConn(t *testing.T) {
	tests := []struct {
		name        string
		host        func(net.Conn)
		wantErr     bool
		wantWritten bool
	}{
		{"answer", echoHost, false, false},
		{"closed before write", func(c net.Conn) {}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{Addr: "pipe:0", Timeout: time.Second, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				a, b := net.Pipe()
				done := make(chan struct{})
				go func() { defer b.Close(); defer close(done); tc.host(b) }()
				if tc.wantErr {
					<-done
				}
				return a, nil
			}}
			req := frame(30, 0x44)
			n, err := c.Exchange(context.Background(), req, make([]byte, MaxFrame))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if RequestWritten(err) != tc.wantWritten {
				t.Errorf("written = %v (%v)", RequestWritten(err), err)
			}
			if !tc.wantErr && n != len(req) {
				t.Errorf("n = %d", n)
			}
		})
	}
}

package acqmsg

import (
	"encoding/hex"
	"errors"
	"maps"
	"strconv"
	"testing"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal"
)

// The golden story (iso8583/testdata/golden/README.md): one terminal, one
// card, batch 000001, the clear MAK of every MACed message.
const (
	storyTID    = "12345678"
	storyMID    = "123456789012345"
	storyPAN    = terminal.PAN("6222021234567890123")
	storyTrack2 = "6222021234567890123=25122010000000000"
	storyExpiry = "2512"
	storyEntry  = "021"
	storyMAK    = "4A7C19E3B5D20F86"
)

var storyMerchant = terminal.Merchant{TID: storyTID, MID: storyMID, AcquirerAddr: "127.0.0.1:1", TPDU: "6000030000"}

// keyMAC is the secure element's MAC role with a clear test MAK.
type keyMAC struct{ m *mac.MACer }

func (k keyMAC) MAC(block []byte) ([8]byte, error) { return k.m.Sum(block), nil }

func storyMACer(t testing.TB) keyMAC {
	t.Helper()
	mak, err := hex.DecodeString(storyMAK)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mac.NewMACer(mak)
	if err != nil {
		t.Fatal(err)
	}
	return keyMAC{m}
}

// brokenMAC is a secure element that cannot MAC (no MAK installed).
type brokenMAC struct{}

var errNoMAK = errors.New("no MAK")

func (brokenMAC) MAC([]byte) ([8]byte, error) { return [8]byte{}, errNoMAK }

// story transactions.
func saleTxn(stan terminal.STAN, amount terminal.Amount) terminal.Txn {
	return terminal.Txn{Batch: 1, STAN: stan, Type: terminal.Sale, Amount: amount, PAN: storyPAN,
		Expiry: storyExpiry, EntryMode: storyEntry, Status: terminal.Pending}
}

func voidTxn(stan terminal.STAN, amount terminal.Amount, rrn, auth string, orig terminal.STAN) terminal.Txn {
	t := saleTxn(stan, amount)
	t.Type, t.RRN, t.Auth, t.OrigBatch, t.OrigSTAN = terminal.Void, rrn, auth, 1, orig
	return t
}

// answerFrame packs an answer; withMAC sets field 64 to the MAC under
// the story's MAK. Fields are semantic values, hex for 62 and 64. (The
// fast codec packs it: the moov-io reference, which the codec's own tests
// hold it to, does not compile for 32-bit ARM, where these tests run too.)
func answerFrame(t testing.TB, mti string, header [6]byte, fields map[int]string, withMAC bool) []byte {
	t.Helper()
	f := maps.Clone(fields)
	if withMAC {
		f[64] = "0000000000000000"
	}
	var m iso8583.Message
	m.TPDU = [5]byte{0x60, 0x00, 0x00, 0x00, 0x03}
	m.Header = header
	v, err := strconv.ParseUint(mti, 16, 16)
	if err != nil {
		t.Fatalf("MTI %q: %v", mti, err)
	}
	m.MTI = uint16(v)
	for id, val := range f {
		if id == 62 || id == 64 {
			b, herr := hex.DecodeString(val)
			if herr != nil {
				t.Fatalf("field %d: %v", id, herr)
			}
			err = m.Set(id, b)
		} else {
			err = m.SetString(id, val)
		}
		if err != nil {
			t.Fatalf("answer %s field %d %q: %v", mti, id, val, err)
		}
	}
	buf := make([]byte, FrameSize)
	n, err := m.Pack(buf)
	if err != nil {
		t.Fatalf("pack answer %s: %v", mti, err)
	}
	frame := buf[:n]
	if withMAC {
		block, err := iso8583.MACBlock(frame)
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := storyMACer(t).MAC(block)
		if err := iso8583.PutMAC(frame, sum[:]); err != nil {
			t.Fatal(err)
		}
	}
	return frame
}

var answerHeader = [6]byte{0x60, 0x31, 0x00, 0x31, 0x00, 0x00}

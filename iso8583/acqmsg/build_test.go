package acqmsg

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/posagent/posagent/iso8583"
	"github.com/posagent/posagent/terminal"
)

// fieldsOf decodes a built frame and lists its fields.
func fieldsOf(t *testing.T, frame []byte) (*iso8583.Message, []int) {
	t.Helper()
	m := new(iso8583.Message)
	if err := m.Unpack(frame); err != nil {
		t.Fatalf("built frame does not decode: %v", err)
	}
	var ids []int
	for id := 2; id <= 64; id++ {
		if m.Has(id) {
			ids = append(ids, id)
		}
	}
	return m, ids
}

// TestBuildFieldSets: each request carries exactly acquirer.md's fields,
// including the cases the golden story does not show (a reversal of a
// sale, a reversal with the auth code of a bad-MAC answer, a full batch
// upload).
func TestBuildFieldSets(t *testing.T) {
	revSale := terminal.Request{ID: 1, Kind: terminal.MsgReversal, STAN: 2, Merchant: storyMerchant,
		Txn: saleTxn(2, 12345), Reason: terminal.ReasonMACFailed, Auth: "381602"}
	eight := make([]terminal.Txn, 8)
	for i := range eight {
		eight[i] = saleTxn(terminal.STAN(i+1), terminal.Amount(100*(i+1)))
	}
	full := terminal.Request{Kind: terminal.MsgBatchUpload, STAN: 9, Batch: 1, Merchant: storyMerchant, Records: eight}
	tests := []struct {
		name string
		q    terminal.Request
		want []int
		also func(t *testing.T, m *iso8583.Message)
	}{
		{"sign-in", reqSignIn, []int{11, 41, 42, 60, 63}, nil},
		{"sale", reqSaleA, []int{2, 3, 4, 11, 14, 22, 25, 35, 41, 42, 49, 60, 63, 64}, nil},
		{"void", reqVoidA, []int{2, 3, 4, 11, 14, 22, 25, 37, 38, 41, 42, 49, 60, 61, 63, 64}, nil},
		{"reversal of a void", reqReversal, []int{2, 3, 4, 11, 14, 22, 25, 39, 41, 42, 49, 60, 61, 64}, nil},
		{"reversal of a sale after a bad MAC", revSale, []int{2, 3, 4, 11, 14, 22, 25, 38, 39, 41, 42, 49, 60, 64},
			func(t *testing.T, m *iso8583.Message) {
				for id, want := range map[int]string{3: "000000", 11: "000002", 38: "381602", 39: "A0", 60: "2200000100000"} {
					if got := string(m.Get(id)); got != want {
						t.Errorf("field %d = %q, want %q", id, got, want)
					}
				}
			}},
		{"settlement", reqSettlement, []int{11, 41, 42, 48, 49, 60, 63}, nil},
		{"batch upload of 8 records", full, []int{11, 41, 42, 48, 60}, func(t *testing.T, m *iso8583.Message) {
			f48 := string(m.Get(48))
			if len(f48) != 322 || !strings.HasPrefix(f48, "08") ||
				f48[2+7*40:] != "00"+"000008"+"0"+"6222021234567890123"+"000000000800" {
				t.Errorf("field 48 = %q", f48)
			}
		}},
		{"batch upload end", reqUploadEnd202, []int{11, 41, 42, 48, 60}, nil},
	}
	var c Codec
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dst [FrameSize]byte
			n, err := c.Build(dst[:], tc.q, storyMACer(t))
			if err != nil {
				t.Fatal(err)
			}
			m, ids := fieldsOf(t, dst[:n])
			if !slices.Equal(ids, tc.want) {
				t.Errorf("fields %v, want %v", ids, tc.want)
			}
			if tc.also != nil {
				tc.also(t, m)
			}
		})
	}
}

// TestBuildRefuses: a request the profile cannot carry is an error that
// names the message, and nothing is sent.
func TestBuildRefuses(t *testing.T) {
	mod := func(q terminal.Request, f func(q *terminal.Request)) terminal.Request {
		f(&q)
		return q
	}
	nine := make([]terminal.Txn, 9)
	for i := range nine {
		nine[i] = saleTxn(terminal.STAN(i+1), 100)
	}
	tests := []struct {
		name  string
		q     terminal.Request
		macer MACer
		want  string
	}{
		{"unknown kind", mod(reqSaleA, func(q *terminal.Request) { q.Kind = 0 }), nil, "unknown request kind"},
		{"kind out of range", mod(reqSaleA, func(q *terminal.Request) { q.Kind = 200 }), nil, "unknown request kind"},
		{"no TID", mod(reqSaleA, func(q *terminal.Request) { q.Merchant.TID = "" }), nil, "not provisioned"},
		{"no MID", mod(reqSignIn, func(q *terminal.Request) { q.Merchant.MID = "" }), nil, "not provisioned"},
		{"TID of 7", mod(reqSignIn, func(q *terminal.Request) { q.Merchant.TID = "1234567" }), nil, "field 41"},
		{"TPDU not hex", mod(reqSignIn, func(q *terminal.Request) { q.Merchant.TPDU = "60000300zz" }), nil, "TPDU"},
		{"TPDU short", mod(reqSignIn, func(q *terminal.Request) { q.Merchant.TPDU = "600003" }), nil, "TPDU"},
		{"STAN of 7 digits", mod(reqSignIn, func(q *terminal.Request) { q.STAN = 1000000 }), nil, "field 11"},
		{"batch of 7 digits", mod(reqSignIn, func(q *terminal.Request) { q.Batch = 1000000 }), nil, "batch 1000000"},
		{"negative amount", mod(reqSaleA, func(q *terminal.Request) { q.Txn.Amount = -1 }), nil, "negative amount"},
		{"amount of 13 digits", mod(reqSaleA, func(q *terminal.Request) { q.Txn.Amount = 1e12 }), nil, "field 4"},
		{"PAN with a letter", mod(reqSaleA, func(q *terminal.Request) { q.Txn.PAN = "62220212345678901X3" }), nil, "field 2"},
		{"track 2 too long", mod(reqSaleA, func(q *terminal.Request) { q.Track2 += "0" }), nil, "field 35"},
		{"void without the original RRN", mod(reqVoidA, func(q *terminal.Request) { q.Txn.RRN = "" }), nil, "field 37"},
		{"void of an original batch of 7 digits", mod(reqVoidA, func(q *terminal.Request) { q.Txn.OrigBatch = 1000000 }), nil, "original batch"},
		{"reversal of no type", mod(reqReversal, func(q *terminal.Request) { q.Txn.Type = 0 }), nil, "type 0"},
		{"reversal without a reason", mod(reqReversal, func(q *terminal.Request) { q.Reason = "" }), nil, "field 39"},
		{"settlement count of 4 digits", mod(reqSettlement, func(q *terminal.Request) { q.Totals.DebitCount = 1000 }), nil, "debit count"},
		{"settlement negative credit", mod(reqSettlement, func(q *terminal.Request) { q.Totals.CreditAmount = -5 }), nil, "credit amount"},
		{"9 upload records", mod(reqUpload, func(q *terminal.Request) { q.Records = nine }), nil, "at most 8"},
		{"upload record PAN of 21", mod(reqUpload, func(q *terminal.Request) {
			q.Records = slices.Clone(q.Records)
			q.Records[0].PAN = "622202123456789012345"
		}), nil, "at most 20"},
		{"upload end count of 5 digits", mod(reqUploadEnd202, func(q *terminal.Request) { q.Count = 10000 }), nil, "upload count"},
		{"the secure element cannot MAC", reqSaleA, brokenMAC{}, "MAC: no MAK"},
	}
	var c Codec
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			macer := tc.macer
			if macer == nil {
				macer = storyMACer(t)
			}
			var dst [FrameSize]byte
			n, err := c.Build(dst[:], tc.q, macer)
			if err == nil {
				t.Fatalf("built %d bytes, want an error", n)
			}
			if n != 0 || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "request") {
				t.Errorf("n %d err %q, want 0 and an error naming the request and %q", n, err, tc.want)
			}
		})
	}
	// An upload record's PAN is copied as digits only if the codec checks
	// them: a letter is refused in field 48.
	q := mod(reqUpload, func(q *terminal.Request) { q.Records = []terminal.Txn{saleTxn(1, 1)}; q.Records[0].PAN = "6222X" })
	var dst [FrameSize]byte
	if _, err := c.Build(dst[:], q, storyMACer(t)); !errors.Is(err, iso8583.ErrBadChar) {
		t.Errorf("upload record with a letter in the PAN: err %v, want ErrBadChar", err)
	}
}

// TestBuildDefaultTPDU: a merchant provisioned without a TPDU gets
// acquirer.md's default, 60 00 03 00 00.
func TestBuildDefaultTPDU(t *testing.T) {
	q := reqSignIn
	q.Merchant.TPDU = ""
	var c Codec
	var dst [FrameSize]byte
	n, err := c.Build(dst[:], q, storyMACer(t))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := fieldsOf(t, dst[:n])
	if m.TPDU != defaultTPDU {
		t.Errorf("TPDU % X, want % X", m.TPDU, defaultTPDU)
	}
	q.Merchant.TPDU = "6000120034"
	if n, err = c.Build(dst[:], q, storyMACer(t)); err != nil {
		t.Fatal(err)
	}
	if m, _ = fieldsOf(t, dst[:n]); m.TPDU != [5]byte{0x60, 0x00, 0x12, 0x00, 0x34} {
		t.Errorf("TPDU % X, want the merchant's", m.TPDU)
	}
}

// TestHotPathAllocs: building a sale or void and reading its approval
// allocate nothing but the strings handed to the core (RRN, auth code,
// local date and time), with a MACer that allocates nothing.
func TestHotPathAllocs(t *testing.T) {
	var c Codec
	macer := storyMACer(t)
	var dst [FrameSize]byte
	for _, q := range []terminal.Request{reqSaleA, reqVoidA, reqReversal} {
		if n := testing.AllocsPerRun(100, func() {
			if _, err := c.Build(dst[:], q, macer); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Build %s: %v allocs, want 0", q.Kind, n)
		}
	}
	answer := answerFrame(t, "0210", answerHeader, with(saleAnswer(), 11, "000003"), true)
	if n := testing.AllocsPerRun(100, func() {
		if r := c.Answer(reqVoidA, answer, nil, macer).Reply.Resp; !r.Approved() || r.MACBad || r.Undecodable {
			t.Fatalf("not a good approval: %+v", r)
		}
	}); n > 4 {
		t.Errorf("Answer: %v allocs, want at most 4 (RRN, auth, date, time)", n)
	}
}

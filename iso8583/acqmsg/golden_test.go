package acqmsg

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/posagent/posagent/iso8583/internal/golden"
	"github.com/posagent/posagent/iso8583/mac"
	"github.com/posagent/posagent/terminal"
)

// The requests of the golden story, as the core describes them.
var (
	reqSignIn = terminal.Request{ID: 1, Kind: terminal.MsgSignIn, STAN: 1, Batch: 1, Merchant: storyMerchant}
	reqSaleA  = terminal.Request{ID: 2, Kind: terminal.MsgSale, STAN: 2, Batch: 1, Merchant: storyMerchant,
		Txn: saleTxn(2, 12345), Track2: storyTrack2}
	reqVoidA = terminal.Request{ID: 3, Kind: terminal.MsgVoid, STAN: 3, Batch: 1, Merchant: storyMerchant,
		Txn: voidTxn(3, 12345, "251121000102", "381602", 2)}
	reqSaleB = terminal.Request{ID: 4, Kind: terminal.MsgSale, STAN: 4, Batch: 1, Merchant: storyMerchant,
		Txn: saleTxn(4, 5000), Track2: storyTrack2}
	reqVoidB = terminal.Request{ID: 5, Kind: terminal.MsgVoid, STAN: 5, Batch: 1, Merchant: storyMerchant,
		Txn: voidTxn(5, 5000, "251121000104", "381604", 4)}
	// The core's reversal of the unanswered void of sale B: its image, 39 = 98.
	reqReversal = terminal.Request{ID: 6, Kind: terminal.MsgReversal, STAN: 5, Batch: 1, Merchant: storyMerchant,
		Txn: voidTxn(5, 5000, "251121000104", "381604", 4), Reason: terminal.ReasonNoAnswer}
	reqSettlement = terminal.Request{ID: 7, Kind: terminal.MsgSettlement, STAN: 6, Batch: 1, Merchant: storyMerchant,
		Totals: terminal.Totals{DebitAmount: 17345, DebitCount: 2, CreditAmount: 12345, CreditCount: 1}}
	reqUploadEnd207 = terminal.Request{ID: 8, Kind: terminal.MsgBatchUploadEnd, STAN: 7, Batch: 1, Merchant: storyMerchant,
		Count: 0, Balanced: true}
	reqUpload = terminal.Request{ID: 9, Kind: terminal.MsgBatchUpload, STAN: 7, Batch: 1, Merchant: storyMerchant,
		Records: []terminal.Txn{saleTxn(2, 12345), voidTxn(3, 12345, "251121000102", "381602", 2), saleTxn(4, 5000)}}
	reqUploadEnd202 = terminal.Request{ID: 10, Kind: terminal.MsgBatchUploadEnd, STAN: 8, Batch: 1, Merchant: storyMerchant,
		Count: 3, Balanced: false}
)

// goldenRequests: every golden request and the Request that must build it.
var goldenRequests = map[string]terminal.Request{
	"signin-request.json":               reqSignIn,
	"sale-request.json":                 reqSaleA,
	"void-request.json":                 reqVoidA,
	"sale2-request.json":                reqSaleB,
	"void2-request.json":                reqVoidB,
	"reversal-request.json":             reqReversal,
	"settlement-request.json":           reqSettlement,
	"batch-upload-end-207-request.json": reqUploadEnd207,
	"batch-upload-request.json":         reqUpload,
	"batch-upload-end-202-request.json": reqUploadEnd202,
}

// goldenAnswer is a golden response, the request it answers and what the
// core must read from it.
type goldenAnswer struct {
	req  terminal.Request
	want terminal.Response
	keys bool // the answer hands over the sign-in's key block
}

func resp(code, rrn, auth string, stan terminal.STAN, date, time string) terminal.Response {
	return terminal.Response{RespCode: code, RRN: rrn, Auth: auth, STAN: stan, TID: storyTID, Batch: 1,
		LocalDate: date, LocalTime: time}
}

var goldenAnswers = map[string]goldenAnswer{
	"signin-response.json": {req: reqSignIn, keys: true,
		want: resp("00", "251121000101", "", 1, "1121", "103000")},
	"signin-response-declined.json": {req: reqSignIn,
		want: resp("97", "251121000101", "", 1, "1121", "103000")},
	"sale-response.json": {req: reqSaleA,
		want: resp("00", "251121000102", "381602", 2, "1121", "103005")},
	"sale-response-declined.json": {req: reqSaleA,
		want: resp("51", "251121000102", "", 2, "1121", "103005")},
	"sale-response-signin-again.json": {req: reqSaleA,
		want: func() terminal.Response {
			r := resp("00", "251121000102", "381602", 2, "1121", "103005")
			r.SignInAgain = true
			return r
		}()},
	"void-response.json": {req: reqVoidA,
		want: resp("00", "251121000103", "381603", 3, "1121", "103010")},
	"sale2-response.json": {req: reqSaleB,
		want: resp("00", "251121000104", "381604", 4, "1121", "103015")},
	"reversal-response.json": {req: reqReversal,
		want: resp("00", "251121000105", "", 5, "", "")},
	"settlement-response-balanced.json": {req: reqSettlement,
		want: func() terminal.Response {
			r := resp("00", "251121000106", "", 6, "1121", "103030")
			r.SettleFlag = '1'
			return r
		}()},
	"settlement-response-not-balanced.json": {req: reqSettlement,
		want: func() terminal.Response {
			r := resp("00", "251121000106", "", 6, "1121", "103030")
			r.SettleFlag = '2'
			return r
		}()},
	"batch-upload-end-207-response.json": {req: reqUploadEnd207,
		want: resp("00", "", "", 7, "1121", "103035")},
	"batch-upload-response.json": {req: reqUpload,
		want: resp("00", "", "", 7, "1121", "103035")},
	"batch-upload-end-202-response.json": {req: reqUploadEnd202,
		want: resp("00", "", "", 8, "1121", "103040")},
}

// TestGoldenEveryFileHasACase: a golden file added to the repository
// without a case here fails, so none goes untested.
func TestGoldenEveryFileHasACase(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range golden.All(t) {
		seen[g.File] = true
		_, isReq := goldenRequests[g.File]
		_, isAns := goldenAnswers[g.File]
		if !isReq && !isAns {
			t.Errorf("%s: no case in goldenRequests or goldenAnswers", g.File)
		}
	}
	for f := range goldenRequests {
		if !seen[f] {
			t.Errorf("goldenRequests names %s, not in the golden files", f)
		}
	}
	for f := range goldenAnswers {
		if !seen[f] {
			t.Errorf("goldenAnswers names %s, not in the golden files", f)
		}
	}
}

// TestBuildGolden: every golden request comes out byte for byte from the
// core's Request and the story's MAK.
func TestBuildGolden(t *testing.T) {
	var c Codec
	macer := storyMACer(t)
	for _, g := range golden.All(t) {
		q, ok := goldenRequests[g.File]
		if !ok {
			continue
		}
		t.Run(g.Name, func(t *testing.T) {
			var dst [FrameSize]byte
			n, err := c.Build(dst[:], q, macer)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if !bytes.Equal(dst[:n], g.Frame) {
				t.Errorf("frame\n got %X\nwant %X", dst[:n], g.Frame)
			}
		})
	}
}

// TestAnswerGolden: every golden response reads into the Response the core
// expects, its MAC verified with the story's MAK; the sign-in's key block
// is handed over, and unwraps under the TMK to the story's keys.
func TestAnswerGolden(t *testing.T) {
	var c Codec
	macer := storyMACer(t)
	for _, g := range golden.All(t) {
		ga, ok := goldenAnswers[g.File]
		if !ok {
			continue
		}
		t.Run(g.Name, func(t *testing.T) {
			a := c.Answer(ga.req, g.Frame, nil, macer)
			if a.Reply.ID != ga.req.ID || a.Reply.Err != nil || a.Reply.Written {
				t.Errorf("reply ID %d err %v written %v, want ID %d and no error", a.Reply.ID, a.Reply.Err, a.Reply.Written, ga.req.ID)
			}
			if !reflect.DeepEqual(a.Reply.Resp, ga.want) {
				t.Errorf("response\n got %+v\nwant %+v", a.Reply.Resp, ga.want)
			}
			if !ga.keys {
				if a.WorkingKeys != nil {
					t.Errorf("working keys %X handed over, want none", a.WorkingKeys)
				}
				return
			}
			if want := g.Fields[62]; hex.EncodeToString(a.WorkingKeys) != lower(want) {
				t.Fatalf("working keys %X, want field 62 %s", a.WorkingKeys, want)
			}
			pik, mak, err := mac.UnwrapWorkingKeys(g.Keys.TMK, a.WorkingKeys)
			if err != nil {
				t.Fatalf("the key block does not unwrap under the story's TMK: %v", err)
			}
			if !bytes.Equal(pik[:], g.Keys.PIK) || !bytes.Equal(mak[:], g.Keys.MAK) {
				t.Errorf("unwrapped PIK %X MAK %X, want the story's", pik, mak)
			}
		})
	}
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

// TestGoldenMACsChecked: the approved golden answers that carry a MAC fail
// with any other MAK, so TestAnswerGolden's MACBad=false is a real check.
func TestGoldenMACsChecked(t *testing.T) {
	var c Codec
	other, err := mac.NewMACer([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, g := range golden.All(t) {
		ga, ok := goldenAnswers[g.File]
		if !ok || g.Fields[64] == "" || g.Fields[39] != "00" {
			continue
		}
		checked++
		if a := c.Answer(ga.req, g.Frame, nil, keyMAC{other}); !a.Reply.Resp.MACBad {
			t.Errorf("%s: MAC accepted under another MAK", g.File)
		}
	}
	if checked < 5 {
		t.Errorf("only %d MACed approvals among the golden answers, want at least 5", checked)
	}
}

package acqmsg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/posagent/posagent/iso8583/link"
	"github.com/posagent/posagent/terminal"
)

// saleAnswer is the fields of an approved answer to reqSaleA.
func saleAnswer() map[int]string {
	return map[int]string{
		2: storyPAN.Digits(), 3: "000000", 4: "000000012345", 11: "000002", 12: "103005", 13: "1121",
		14: "2512", 25: "00", 32: "48020000", 37: "251121000102", 38: "381602", 39: "00",
		41: storyTID, 42: storyMID, 44: "01020000   48020000   ", 49: "156", 60: "2200000100000", 63: "CUP",
	}
}

func with(f map[int]string, id int, v string) map[int]string {
	f = maps.Clone(f)
	f[id] = v
	return f
}

func without(f map[int]string, ids ...int) map[int]string {
	f = maps.Clone(f)
	for _, id := range ids {
		delete(f, id)
	}
	return f
}

// TestAnswerChecks: the response checks one by one, on answers made by the
// reference encoder.
func TestAnswerChecks(t *testing.T) {
	sale := saleAnswer()
	story := storyMACer(t)
	header3 := [6]byte{0x60, 0x31, 0x03, 0x31, 0x00, 0x00}
	header5 := [6]byte{0x60, 0x31, 0x05, 0x31, 0x00, 0x00}
	// A reversal whose own STAN (the core always sends the reversed one)
	// differs, to show field 11 is checked against the message reversed.
	rev := reqReversal
	rev.STAN = 999
	revAnswer := map[int]string{11: "000005", 37: "251121000105", 39: "00", 41: storyTID, 42: storyMID, 60: "2300000100000"}
	settle := map[int]string{11: "000006", 12: "103030", 13: "1121", 15: "1121", 37: "251121000106", 39: "00",
		41: storyTID, 42: storyMID, 60: "0000000120100"}
	totals := func(flag byte) string {
		return "000000017345002000000012345001" + string(flag) + strings.Repeat("0", 31)
	}
	signin := map[int]string{11: "000001", 12: "103000", 13: "1121", 37: "251121000101", 39: "00",
		41: storyTID, 42: storyMID, 60: "0000000100300",
		62: "B7FC11A0F16C3E06636697AAD16DE2BC16E9117D3F96276AB258F7A80000000000000000DC15F9E3"}

	type check func(t *testing.T, a Answer)
	approved := func(t *testing.T, a Answer) {
		r := a.Reply.Resp
		if r.Undecodable || !r.Approved() || r.MACBad {
			t.Errorf("want a good approval, got %+v", r)
		}
	}
	declined := func(code string) check {
		return func(t *testing.T, a Answer) {
			r := a.Reply.Resp
			if r.Undecodable || r.Approved() || r.RespCode != code || r.MACBad {
				t.Errorf("want declined %s, got %+v", code, r)
			}
		}
	}
	macBad := func(t *testing.T, a Answer) {
		r := a.Reply.Resp
		if r.Undecodable || !r.MACBad || r.Auth != "381602" {
			t.Errorf("want 39=00 with a bad MAC and the auth code read, got %+v", r)
		}
	}
	undecodable := func(why string) check {
		return func(t *testing.T, a Answer) {
			r := a.Reply.Resp
			if !r.Undecodable || r.DecodeErr == nil || !strings.Contains(r.DecodeErr.Error(), why) {
				t.Errorf("want undecodable (%s), got %+v", why, r)
			}
			if r.Approved() && !r.Undecodable {
				t.Error("approved")
			}
		}
	}
	tests := []struct {
		name   string
		req    terminal.Request
		mti    string
		header [6]byte
		fields map[int]string
		mac    bool // a good MAC in 64
		macer  MACer
		check  check
	}{
		{"sale approved", reqSaleA, "0210", answerHeader, sale, true, nil, approved},
		{"void approved", reqVoidA, "0210", answerHeader, with(with(sale, 11, "000003"), 3, "200000"), true, nil, approved},
		{"51 declined, no MAC", reqSaleA, "0210", answerHeader, without(with(sale, 39, "51"), 38), false, nil, declined("51")},
		{"A0 declined", reqSaleA, "0210", answerHeader, without(with(sale, 39, "A0"), 38), false, nil, declined("A0")},
		{"94 duplicate", reqSaleA, "0210", answerHeader, without(with(sale, 39, "94"), 38), false, nil, declined("94")},
		{"96 switch fault", reqSaleA, "0210", answerHeader, without(with(sale, 39, "96"), 38), false, nil, declined("96")},
		{"25 no original", reqVoidA, "0210", answerHeader, without(with(with(sale, 11, "000003"), 39, "25"), 38), false, nil, declined("25")},
		{"12 invalid, with a MAC", reqVoidA, "0210", answerHeader, without(with(with(sale, 11, "000003"), 39, "12"), 38), true, nil, declined("12")},
		{"declined with a wrong MAC: not checked", reqSaleA, "0210", answerHeader, with(without(with(sale, 39, "55"), 38), 64, "3030303030303030"), false, nil, declined("55")},
		{"approved, MAC wrong", reqSaleA, "0210", answerHeader, with(sale, 64, "4142434445464748"), false, nil, macBad},
		{"approved, no MAC", reqSaleA, "0210", answerHeader, sale, false, nil, macBad},
		{"approved, MAC lower-case hex", reqSaleA, "0210", answerHeader, sale, true, lowerMAC{story}, macBad},
		{"approved, the secure element cannot MAC", reqSaleA, "0210", answerHeader, sale, true, brokenMAC{}, macBad},
		{"F11 mismatch", reqSaleA, "0210", answerHeader, with(sale, 11, "000003"), true, nil, undecodable("STAN")},
		{"F11 missing", reqSaleA, "0210", answerHeader, without(sale, 11), true, nil, undecodable("STAN")},
		{"F41 mismatch", reqSaleA, "0210", answerHeader, with(sale, 41, "87654321"), true, nil, undecodable("TID")},
		{"F41 missing", reqSaleA, "0210", answerHeader, without(sale, 41), true, nil, undecodable("TID")},
		{"MTI of another request", reqSaleA, "0410", answerHeader, sale, true, nil, undecodable("MTI")},
		{"the request echoed", reqSaleA, "0200", answerHeader, sale, true, nil, undecodable("MTI")},
		{"no 39", reqSaleA, "0210", answerHeader, without(sale, 39), true, nil, undecodable("39")},
		{"approved without 38", reqSaleA, "0210", answerHeader, without(sale, 38), true, nil, undecodable("38")},
		{"approved without 37", reqSaleA, "0210", answerHeader, without(sale, 37), true, nil, undecodable("37")},
		{"header: sign in again", reqSaleA, "0210", header3, sale, true, nil, func(t *testing.T, a Answer) {
			approved(t, a)
			if !a.Reply.Resp.SignInAgain || a.Requirement != 3 {
				t.Errorf("SignInAgain %v requirement %d, want true 3", a.Reply.Resp.SignInAgain, a.Requirement)
			}
		}},
		{"header: another requirement, logged only", reqSaleA, "0210", header5, sale, true, nil, func(t *testing.T, a Answer) {
			approved(t, a)
			if a.Reply.Resp.SignInAgain || a.Requirement != 5 {
				t.Errorf("SignInAgain %v requirement %d, want false 5", a.Reply.Resp.SignInAgain, a.Requirement)
			}
		}},
		{"header: sign in again on a decline", reqSaleA, "0210", header3, without(with(sale, 39, "51"), 38), false, nil, func(t *testing.T, a Answer) {
			declined("51")(t, a)
			if !a.Reply.Resp.SignInAgain {
				t.Error("SignInAgain false")
			}
		}},
		{"reversal: F11 of the message reversed", rev, "0410", answerHeader, revAnswer, true, nil, func(t *testing.T, a Answer) {
			approved(t, a)
			if a.Reply.Resp.STAN != 5 {
				t.Errorf("STAN %s, want 000005", a.Reply.Resp.STAN)
			}
		}},
		{"reversal: declined clears too, core's rule", rev, "0410", answerHeader, with(revAnswer, 39, "25"), false, nil, declined("25")},
		{"reversal: approved, MAC wrong", rev, "0410", answerHeader, with(revAnswer, 64, "4142434445464748"), false, nil, func(t *testing.T, a Answer) {
			if r := a.Reply.Resp; r.Undecodable || !r.MACBad || r.STAN != 5 {
				t.Errorf("want a decoded 0410 with MACBad, got %+v", r)
			}
		}},
		{"reversal: no 39 clears too", rev, "0410", answerHeader, without(revAnswer, 39), false, nil, func(t *testing.T, a Answer) {
			if r := a.Reply.Resp; r.Undecodable || r.Approved() || r.STAN != 5 || r.TID != storyTID {
				t.Errorf("want a decoded 0410 with F11 and F41, got %+v", r)
			}
		}},
		{"reversal: F11 of its own request", rev, "0410", answerHeader, with(revAnswer, 11, "000999"), true, nil, undecodable("STAN")},
		{"settlement: balanced", reqSettlement, "0510", answerHeader, with(settle, 48, totals('1')), false, nil, flag('1')},
		{"settlement: not balanced", reqSettlement, "0510", answerHeader, with(settle, 48, totals('2')), false, nil, flag('2')},
		{"settlement: error", reqSettlement, "0510", answerHeader, with(settle, 48, totals('3')), false, nil, flag('3')},
		{"settlement: no 48", reqSettlement, "0510", answerHeader, settle, false, nil, flag(0)},
		{"settlement: 48 too short for the flag", reqSettlement, "0510", answerHeader, with(settle, 48, "000000017345002000000012345001"), false, nil, flag(0)},
		{"settlement: the host's 60.2", reqSettlement, "0510", answerHeader, with(settle, 60, "0000042220100"), false, nil, func(t *testing.T, a Answer) {
			if a.Reply.Resp.Batch != 422 {
				t.Errorf("batch %s, want 000422", a.Reply.Resp.Batch)
			}
		}},
		{"sign-in: keys handed over", reqSignIn, "0810", answerHeader, signin, false, nil, func(t *testing.T, a Answer) {
			approved(t, a)
			if len(a.WorkingKeys) != 40 || a.Reply.Resp.KeysErr != nil {
				t.Errorf("keys %X err %v, want 40 bytes and no error", a.WorkingKeys, a.Reply.Resp.KeysErr)
			}
		}},
		{"sign-in: approved without 62", reqSignIn, "0810", answerHeader, without(signin, 62), false, nil, keysErr("62")},
		{"sign-in: 62 of 39 bytes", reqSignIn, "0810", answerHeader, with(signin, 62, signin[62][:78]), false, nil, keysErr("39 bytes")},
		{"sign-in: declined, no keys asked for", reqSignIn, "0810", answerHeader, without(with(signin, 39, "97"), 62), false, nil, func(t *testing.T, a Answer) {
			declined("97")(t, a)
			if a.WorkingKeys != nil || a.Reply.Resp.KeysErr != nil {
				t.Errorf("keys %X err %v on a decline", a.WorkingKeys, a.Reply.Resp.KeysErr)
			}
		}},
		{"sign-in: declined with 62: not handed over", reqSignIn, "0810", answerHeader, with(signin, 39, "97"), false, nil, func(t *testing.T, a Answer) {
			if a.WorkingKeys != nil {
				t.Errorf("keys %X handed over on a decline", a.WorkingKeys)
			}
		}},
		{"batch upload end: answered", reqUploadEnd202, "0330", answerHeader,
			map[int]string{11: "000008", 39: "00", 41: storyTID, 42: storyMID, 48: "0003", 60: "0000000120200"}, false, nil, approved},
		{"batch upload: answered by a 0330 of another STAN", reqUpload, "0330", answerHeader,
			map[int]string{11: "000006", 39: "00", 41: storyTID, 42: storyMID, 60: "0000000120100"}, false, nil, undecodable("STAN")},
	}
	var c Codec
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame := answerFrame(t, tc.mti, tc.header, tc.fields, tc.mac)
			macer := tc.macer
			if macer == nil {
				macer = storyMACer(t)
			}
			a := c.Answer(tc.req, frame, nil, macer)
			if a.Reply.ID != tc.req.ID || a.Reply.Err != nil || a.Reply.Written {
				t.Errorf("reply ID %d err %v written %v, want ID %d, no error", a.Reply.ID, a.Reply.Err, a.Reply.Written, tc.req.ID)
			}
			tc.check(t, a)
		})
	}
}

func flag(f byte) func(t *testing.T, a Answer) {
	return func(t *testing.T, a Answer) {
		r := a.Reply.Resp
		if r.Undecodable || !r.Approved() || r.SettleFlag != f {
			t.Errorf("want approved with flag %q, got %+v (flag %q)", f, r, r.SettleFlag)
		}
	}
}

func keysErr(why string) func(t *testing.T, a Answer) {
	return func(t *testing.T, a Answer) {
		r := a.Reply.Resp
		if r.Undecodable || !r.Approved() || r.KeysErr == nil || !strings.Contains(r.KeysErr.Error(), why) || a.WorkingKeys != nil {
			t.Errorf("want approved with KeysErr (%s) and no keys, got %+v keys %X", why, r, a.WorkingKeys)
		}
	}
}

// lowerMAC answers the right MAC in lower-case hex: CUP hosts send upper
// case and the comparison is exact.
type lowerMAC struct{ k keyMAC }

func (l lowerMAC) MAC(block []byte) ([8]byte, error) {
	s, _ := l.k.MAC(block)
	for i, c := range s {
		if c >= 'A' && c <= 'F' {
			s[i] = c + 'a' - 'A'
		}
	}
	return s, nil
}

// TestAnswerGarbage: what does not decode is undecodable, never approved.
func TestAnswerGarbage(t *testing.T) {
	good := answerFrame(t, "0210", answerHeader, saleAnswer(), true)
	cut := good[:len(good)-3]
	cut[0], cut[1] = byte((len(cut)-2)>>8), byte(len(cut)-2)
	extra := append(append([]byte{}, good...), 0)
	extra[0], extra[1] = byte((len(extra)-2)>>8), byte(len(extra)-2)
	for name, frame := range map[string][]byte{
		"empty":            nil,
		"length only":      {0, 0},
		"cut":              cut,
		"a byte too many":  extra,
		"prefix disagrees": append([]byte{0x00, 0x10}, good[2:]...),
		"all 0xFF":         append([]byte{0x00, 0x30}, make([]byte, 0x30)...),
	} {
		t.Run(name, func(t *testing.T) {
			var c Codec
			r := c.Answer(reqSaleA, frame, nil, storyMACer(t)).Reply.Resp
			if !r.Undecodable || r.DecodeErr == nil {
				t.Errorf("want undecodable, got %+v", r)
			}
		})
	}
}

// TestAnswerExchangeErrors: the link's verdicts. An answer that is not a
// frame is an answer that does not decode (06); no answer after the write
// owes a reversal (98); a request that never left owes nothing.
func TestAnswerExchangeErrors(t *testing.T) {
	notFrame := &link.Error{Op: "read", Written: true, NotAFrame: true, Err: link.ErrFrameTooLarge}
	timeout := &link.Error{Op: "read", Written: true, Timeout: true, Err: context.DeadlineExceeded}
	broken := &link.Error{Op: "read", Written: true, Err: io.ErrUnexpectedEOF}
	dial := &link.Error{Op: "dial", Err: errors.New("connection refused")}
	build := fmt.Errorf("build sale request: %w", errNotProvisioned)
	tests := []struct {
		name        string
		err         error
		undecodable bool
		written     bool
	}{
		{"not a frame", notFrame, true, false},
		{"not a frame, wrapped", fmt.Errorf("exchange: %w", notFrame), true, false},
		{"timeout", timeout, false, true},
		{"broken after the write", broken, false, true},
		{"dial failed", dial, false, false},
		{"never built", build, false, false},
	}
	var c Codec
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A frame that would be approved: it must not be read.
			a := c.Answer(reqSaleA, answerFrame(t, "0210", answerHeader, saleAnswer(), true), tc.err, storyMACer(t))
			r := a.Reply
			if r.ID != reqSaleA.ID {
				t.Errorf("ID %d, want %d", r.ID, reqSaleA.ID)
			}
			if tc.undecodable {
				if r.Err != nil || !r.Resp.Undecodable || !errors.Is(r.Resp.DecodeErr, link.ErrFrameTooLarge) {
					t.Errorf("want an undecodable answer, got %+v", r)
				}
				return
			}
			if r.Err == nil || !errors.Is(r.Err, tc.err) || r.Written != tc.written || r.Resp.Approved() {
				t.Errorf("want Err %v written %v, got %+v", tc.err, tc.written, r)
			}
			if !strings.HasPrefix(r.Err.Error(), "sale: ") {
				t.Errorf("error %q does not name the message", r.Err)
			}
		})
	}
}

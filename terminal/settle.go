package terminal

import (
	"fmt"
	"log/slog"
)

// uploadPerMessage is the number of batch-upload records per 0320
// (acquirer.md §Field 48).
const uploadPerMessage = 8

// startSettlement: SETTLE BATCH? with the totals → Enter → PROCESSING →
// SETTLED / SETTLED UPLOADED / SETTLE FAILED <reason>.
func (m *Machine) startSettlement() {
	tot := totalsOf(m.st.Journal)
	m.push(&confirmView{
		lines: []string{
			"SETTLE BATCH?",
			"BATCH " + m.st.Counters.Batch.String(),
			fmt.Sprintf("SALE %3d %s", tot.DebitCount, tot.DebitAmount),
			fmt.Sprintf("VOID %3d %s", tot.CreditCount, tot.CreditAmount),
			"NET " + tot.Net().String(),
			"",
			"ENTER TO SETTLE",
		},
		ok: func(m *Machine) {
			m.replace(&infoView{lines: []string{"SETTLEMENT", "BATCH " + m.st.Counters.Batch.String(), "", "PROCESSING"}})
			m.settle(func(m *Machine, outcome string, err string) {
				if err != "" {
					m.showResult(append([]string{"SETTLE FAILED"}, wrap(err)...)...)
					return
				}
				m.showResult(outcome, "BATCH CLOSED")
			})
		},
	})
}

// Settlement outcomes, as shown and as reported to HQ.
const (
	Settled         = "SETTLED"
	SettledUploaded = "SETTLED UPLOADED"
)

// settle runs the whole settlement: pending reversal and sign-in first,
// 0500, then batch upload end (balanced) or batch upload + end (not
// balanced), then the batch closes. done gets the outcome or a reason.
// The unbind sequence reuses it.
func (m *Machine) settle(done func(m *Machine, outcome, failure string)) {
	m.beforeFinancial(func(m *Machine) {
		batch := m.st.Counters.Batch
		tot := totalsOf(m.st.Journal)
		stan, op := m.allocSTAN()
		m.st.Settling = batch
		m.emit(Persist{Ops: []Op{op, PutSettling{Batch: batch}}})
		m.exchange(Request{Kind: MsgSettlement, STAN: stan, Batch: batch, Totals: tot}, func(m *Machine, r AcquirerReply) {
			switch {
			case r.Err != nil:
				done(m, "", "NO RESPONSE")
			case r.Resp.Undecodable:
				done(m, "", "BAD RESPONSE")
			case !r.Resp.Approved():
				done(m, "", "DECLINED "+r.Resp.RespCode)
			case r.Resp.SettleFlag == '1':
				m.uploadEnd(0, true, func(m *Machine, failure string) {
					m.finishSettlement(batch, Settled, failure, done)
				})
			default:
				m.log(slog.LevelInfo, "settlement not balanced: batch upload", slog.String("batch", batch.String()), slog.String("flag", string(r.Resp.SettleFlag)))
				var recs []Txn
				for _, t := range m.st.Journal {
					if t.Status == Approved {
						recs = append(recs, t)
					}
				}
				m.upload(recs, 0, func(m *Machine, failure string) {
					if failure != "" {
						done(m, "", failure)
						return
					}
					m.uploadEnd(len(recs), false, func(m *Machine, failure string) {
						m.finishSettlement(batch, SettledUploaded, failure, done)
					})
				})
			}
		})
	}, func(m *Machine, reason string) { done(m, "", reason) })
}

// upload sends recs[from:] in 0320s of up to uploadPerMessage records.
func (m *Machine) upload(recs []Txn, from int, done func(m *Machine, failure string)) {
	if from >= len(recs) {
		done(m, "")
		return
	}
	to := min(from+uploadPerMessage, len(recs))
	// A full batch is up to 125 messages: say how far it is.
	if v, ok := m.top().(*infoView); ok && len(v.lines) > 0 && v.lines[0] == "SETTLEMENT" {
		v.lines = []string{"SETTLEMENT", "BATCH " + m.st.Counters.Batch.String(), "BATCH UPLOAD",
			fmt.Sprintf("%d-%d OF %d", from+1, to, len(recs)), "PROCESSING"}
	}
	stan, op := m.allocSTAN()
	m.emit(Persist{Ops: []Op{op}})
	m.exchange(Request{Kind: MsgBatchUpload, STAN: stan, Batch: m.st.Counters.Batch, Records: recs[from:to]}, func(m *Machine, r AcquirerReply) {
		if f := uploadFailure(r); f != "" {
			done(m, f)
			return
		}
		m.upload(recs, to, done)
	})
}

func (m *Machine) uploadEnd(count int, balanced bool, done func(m *Machine, failure string)) {
	stan, op := m.allocSTAN()
	m.emit(Persist{Ops: []Op{op}})
	m.exchange(Request{Kind: MsgBatchUploadEnd, STAN: stan, Batch: m.st.Counters.Batch, Count: count, Balanced: balanced}, func(m *Machine, r AcquirerReply) {
		done(m, uploadFailure(r))
	})
}

func uploadFailure(r AcquirerReply) string {
	switch {
	case r.Err != nil:
		return "NO RESPONSE"
	case r.Resp.Undecodable:
		return "BAD RESPONSE"
	case !r.Resp.Approved():
		return "DECLINED " + r.Resp.RespCode
	}
	return ""
}

// finishSettlement closes the batch: the batch number increments, the
// closed batch stays readable (JOURNAL, REPRINT LAST) until the next
// settlement, and the one before it is dropped.
func (m *Machine) finishSettlement(batch BatchNo, outcome, failure string, done func(m *Machine, outcome, failure string)) {
	if failure != "" {
		done(m, "", failure)
		return
	}
	ops := []Op{}
	if m.st.PrevBatch != 0 && m.st.PrevBatch != batch {
		ops = append(ops, DeleteBatch{Batch: m.st.PrevBatch})
	}
	m.st.Prev, m.st.PrevBatch = m.st.Journal, batch
	m.st.Journal = nil
	m.st.Counters.Batch = batch.Next()
	m.st.Settling = 0
	ops = append(ops, PutCounters{Counters: m.st.Counters}, ClearSettling{})
	m.emit(Persist{Ops: ops})
	m.clearFailStops("a batch closed")
	m.log(slog.LevelInfo, "batch closed", slog.String("batch", batch.String()), slog.String("outcome", outcome))
	m.emit(Print{Receipt: m.settlementReceipt(batch, totalsOf(m.st.Prev), outcome)})
	m.publishStatus()
	done(m, outcome, "")
}

// startSignIn is MAIN MENU 4: PROCESSING → SIGNED IN / SIGN IN FAILED.
func (m *Machine) startSignIn() {
	m.push(&infoView{lines: []string{"SIGN IN", "", "PROCESSING"}})
	m.signIn(func(m *Machine, reason string) {
		if reason != "" {
			m.showResult(append([]string{"SIGN IN FAILED"}, wrap(reason)...)...)
			return
		}
		m.showResult("SIGNED IN", "BATCH "+m.st.Counters.Batch.String())
	})
}

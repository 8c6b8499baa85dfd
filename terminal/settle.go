package terminal

import (
	"fmt"
	"log/slog"

	"github.com/posagent/posagent/terminal/i18n"
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
			m.t(i18n.SettleBatch),
			m.label(i18n.BatchLabel, m.st.Counters.Batch.String()),
			fmt.Sprintf("%s %3d %s", m.typeWord(Sale), tot.DebitCount, tot.DebitAmount),
			fmt.Sprintf("%s %3d %s", m.typeWord(Void), tot.CreditCount, tot.CreditAmount),
			m.label(i18n.NetLabel, tot.Net().String()),
			"",
			m.t(i18n.EnterToSettle),
		},
		ok: func(m *Machine) {
			m.replace(&infoView{lines: []string{m.t(i18n.Settlement), m.label(i18n.BatchLabel, m.st.Counters.Batch.String()), "", m.t(i18n.Processing)}})
			m.settle(func(m *Machine, outcome string, f *failure) {
				if f != nil {
					m.showResult(append([]string{m.t(i18n.SettleFailed)}, m.why(f)...)...)
					return
				}
				m.showResult(m.outcomeWord(outcome), m.t(i18n.BatchClosed))
			})
		},
	})
}

// Settlement outcomes, as reported to HQ (an unbind's result.settlement);
// the screen shows their words (outcomeWord).
const (
	Settled         = "SETTLED"
	SettledUploaded = "SETTLED UPLOADED"
)

// settle runs the whole settlement: pending reversal and sign-in first,
// 0500, then batch upload end (balanced) or batch upload + end (not
// balanced), then the batch closes. done gets the outcome or a failure.
// The unbind sequence reuses it.
func (m *Machine) settle(done func(m *Machine, outcome string, f *failure)) {
	m.beforeFinancial(func(m *Machine) {
		batch := m.st.Counters.Batch
		tot := totalsOf(m.st.Journal)
		stan, op := m.allocSTAN()
		m.st.Settling = batch
		m.emit(Persist{Ops: []Op{op, PutSettling{Batch: batch}}})
		m.exchange(Request{Kind: MsgSettlement, STAN: stan, Batch: batch, Totals: tot}, func(m *Machine, r AcquirerReply) {
			switch {
			case r.Err != nil:
				done(m, "", failed(i18n.NoResponse))
			case r.Resp.Undecodable:
				done(m, "", failed(i18n.BadResponse))
			case !r.Resp.Approved():
				done(m, "", declinedWith(r.Resp.RespCode))
			case r.Resp.SettleFlag == '1':
				m.uploadEnd(0, true, func(m *Machine, f *failure) {
					m.finishSettlement(batch, Settled, f, done)
				})
			default:
				m.log(slog.LevelInfo, "settlement not balanced: batch upload", slog.String("batch", batch.String()), slog.String("flag", string(r.Resp.SettleFlag)))
				var recs []Txn
				for _, t := range m.st.Journal {
					if t.Status == Approved {
						recs = append(recs, t)
					}
				}
				m.upload(recs, 0, func(m *Machine, f *failure) {
					if f != nil {
						done(m, "", f)
						return
					}
					m.uploadEnd(len(recs), false, func(m *Machine, f *failure) {
						m.finishSettlement(batch, SettledUploaded, f, done)
					})
				})
			}
		})
	}, func(m *Machine, f *failure) { done(m, "", f) })
}

// upload sends recs[from:] in 0320s of up to uploadPerMessage records.
func (m *Machine) upload(recs []Txn, from int, done func(m *Machine, f *failure)) {
	if from >= len(recs) {
		done(m, nil)
		return
	}
	to := min(from+uploadPerMessage, len(recs))
	// A full batch is up to 125 messages: say how far it is.
	if v, ok := m.top().(*infoView); ok && len(v.lines) > 0 && v.lines[0] == m.t(i18n.Settlement) {
		v.lines = []string{m.t(i18n.Settlement), m.label(i18n.BatchLabel, m.st.Counters.Batch.String()), m.t(i18n.BatchUpload),
			m.lang.F(i18n.UploadProgress, from+1, to, len(recs)), m.t(i18n.Processing)}
	}
	stan, op := m.allocSTAN()
	m.emit(Persist{Ops: []Op{op}})
	m.exchange(Request{Kind: MsgBatchUpload, STAN: stan, Batch: m.st.Counters.Batch, Records: recs[from:to]}, func(m *Machine, r AcquirerReply) {
		if f := uploadFailure(r); f != nil {
			done(m, f)
			return
		}
		m.upload(recs, to, done)
	})
}

func (m *Machine) uploadEnd(count int, balanced bool, done func(m *Machine, f *failure)) {
	stan, op := m.allocSTAN()
	m.emit(Persist{Ops: []Op{op}})
	m.exchange(Request{Kind: MsgBatchUploadEnd, STAN: stan, Batch: m.st.Counters.Batch, Count: count, Balanced: balanced}, func(m *Machine, r AcquirerReply) {
		done(m, uploadFailure(r))
	})
}

func uploadFailure(r AcquirerReply) *failure {
	switch {
	case r.Err != nil:
		return failed(i18n.NoResponse)
	case r.Resp.Undecodable:
		return failed(i18n.BadResponse)
	case !r.Resp.Approved():
		return declinedWith(r.Resp.RespCode)
	}
	return nil
}

// finishSettlement closes the batch: the batch number increments, the
// closed batch stays readable (JOURNAL, REPRINT LAST) until the next
// settlement, and the one before it is dropped.
func (m *Machine) finishSettlement(batch BatchNo, outcome string, f *failure, done func(m *Machine, outcome string, f *failure)) {
	if f != nil {
		done(m, "", f)
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
	done(m, outcome, nil)
}

// startSignIn is MAIN MENU 4: PROCESSING → SIGNED IN / SIGN IN FAILED.
func (m *Machine) startSignIn() {
	m.push(&infoView{lines: []string{m.t(i18n.SignIn), "", m.t(i18n.Processing)}})
	m.signIn(func(m *Machine, f *failure) {
		if f != nil {
			m.showResult(append([]string{m.t(i18n.SignInFailed)}, m.why(f)...)...)
			return
		}
		m.showResult(m.t(i18n.SignedIn), m.label(i18n.BatchLabel, m.st.Counters.Batch.String()))
	})
}

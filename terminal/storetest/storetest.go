// Package storetest is the one test suite every terminal.Store passes:
// the daemon's bbolt adapter and the core's MemStore run it alike, so the
// in-memory twin the transcripts restart from behaves as the disk does.
package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/posagent/posagent/terminal"
)

// Store is a terminal.Store the suite can also wipe.
type Store interface {
	terminal.Store
	WipeMerchant() error
}

// Factory makes a store with a factory identity of serial "PA00000001"
// and reopens it (a reboot: for a file store, close and open the files).
type Factory struct {
	New    func(t *testing.T) Store
	Reopen func(t *testing.T, s Store) Store
}

// SupervisorHash is a well-formed argon2id PHC string (of "654321") the
// suite stores as a new supervisor password.
const SupervisorHash = "$argon2id$v=19$m=65536,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$Q6Tpq1jYtxSCKvpg2oRgGmmWmhcPDUEAuKYF4GmPRS8"

var t0 = time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)

var merchant = terminal.Merchant{TID: "12345678", MID: "123456789012345", Name: "TEST SHOP", AcquirerAddr: "127.0.0.1:5000", TPDU: "6000030000"}

func txn(b terminal.BatchNo, s terminal.STAN, st terminal.TxnStatus) terminal.Txn {
	return terminal.Txn{Batch: b, STAN: s, Type: terminal.Sale, Amount: terminal.Amount(100 * int64(s)), PAN: "6222021234567890123",
		Expiry: "2512", EntryMode: "021", Time: t0.Add(time.Duration(s) * time.Minute), Status: st}
}

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	load := func(t *testing.T, s Store) terminal.State {
		t.Helper()
		st, err := s.Load()
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return terminal.Resolve(st)
	}
	apply := func(t *testing.T, s Store, ops ...terminal.Op) {
		t.Helper()
		if err := s.Apply(ops); err != nil {
			t.Fatalf("Apply %v: %v", ops, err)
		}
	}
	// reboot reopens *s and loads it.
	reboot := func(t *testing.T, s *Store) terminal.State {
		t.Helper()
		*s = f.Reopen(t, *s)
		return load(t, *s)
	}
	activate := func(t *testing.T, s Store) {
		apply(t, s, terminal.PutParams{Merchant: merchant}, terminal.PutCounters{Counters: terminal.Counters{STAN: 0, Batch: 1}})
		b := terminal.NewBinding("PA00000001", "6222600000000000018", t0)
		apply(t, s, terminal.PutBinding{Binding: b})
	}

	t.Run("fresh is unactivated", func(t *testing.T) {
		s := f.New(t)
		st := load(t, s)
		if st.Lifecycle != terminal.Unactivated || st.Serial != "PA00000001" || st.Merchant.TID != "" {
			t.Fatalf("fresh store: lifecycle %s serial %q TID %q", st.Lifecycle, st.Serial, st.Merchant.TID)
		}
	})

	t.Run("parameters without binding are an incomplete activation", func(t *testing.T) {
		s := f.New(t)
		apply(t, s, terminal.PutParams{Merchant: merchant}, terminal.PutCounters{Counters: terminal.Counters{Batch: 7}})
		st := reboot(t, &s)
		if st.Lifecycle != terminal.Unactivated || !st.Incomplete || st.Merchant != merchant {
			t.Fatalf("lifecycle %s incomplete %v merchant %+v", st.Lifecycle, st.Incomplete, st.Merchant)
		}
	})

	t.Run("journal, reversal and batches survive a reopen", func(t *testing.T) {
		s := f.New(t)
		activate(t, s)
		apply(t, s, terminal.PutTxn{Txn: txn(1, 3, terminal.Approved)}, terminal.PutTxn{Txn: txn(1, 1, terminal.Approved)},
			terminal.PutCounters{Counters: terminal.Counters{STAN: 3, Batch: 1}})
		pending := txn(1, 4, terminal.Pending)
		rv := terminal.Reversal{Txn: pending, Reason: "98"}
		apply(t, s, terminal.PutCounters{Counters: terminal.Counters{STAN: 4, Batch: 1}}, terminal.PutTxn{Txn: pending}, terminal.PutReversal{Reversal: rv})
		st := reboot(t, &s)
		if st.Lifecycle != terminal.Active || st.Counters != (terminal.Counters{STAN: 4, Batch: 1}) {
			t.Fatalf("lifecycle %s counters %+v", st.Lifecycle, st.Counters)
		}
		if len(st.Journal) != 3 || st.Journal[0].STAN != 1 || st.Journal[1].STAN != 3 || st.Journal[2].STAN != 4 {
			t.Fatalf("journal not in STAN order: %+v", st.Journal)
		}
		if !st.Journal[0].Time.Equal(txn(1, 1, 0).Time) || st.Journal[0].PAN != "6222021234567890123" {
			t.Fatalf("journal record changed: %+v", st.Journal[0])
		}
		if st.Reversal == nil || st.Reversal.Txn.STAN != 4 || st.Reversal.Reason != "98" {
			t.Fatalf("reversal slot: %+v", st.Reversal)
		}
		apply(t, s, terminal.ClearReversal{}, terminal.PutSettling{Batch: 1})
		st = reboot(t, &s)
		if st.Reversal != nil || st.Settling != 1 {
			t.Fatalf("after clear: reversal %+v settling %s", st.Reversal, st.Settling)
		}
	})

	t.Run("a closed batch is the previous one", func(t *testing.T) {
		s := f.New(t)
		activate(t, s)
		apply(t, s, terminal.PutTxn{Txn: txn(1, 1, terminal.Approved)})
		apply(t, s, terminal.PutCounters{Counters: terminal.Counters{STAN: 2, Batch: 2}}, terminal.ClearSettling{})
		apply(t, s, terminal.PutTxn{Txn: txn(2, 3, terminal.Approved)})
		st := reboot(t, &s)
		if st.PrevBatch != 1 || len(st.Prev) != 1 || len(st.Journal) != 1 || st.Journal[0].STAN != 3 {
			t.Fatalf("prev %s %d, journal %+v", st.PrevBatch, len(st.Prev), st.Journal)
		}
		apply(t, s, terminal.DeleteBatch{Batch: 1})
		if st := load(t, s); st.PrevBatch != 0 || st.Prev != nil {
			t.Fatalf("deleted batch still there: %s %+v", st.PrevBatch, st.Prev)
		}
	})

	t.Run("boot decision: tampered beats unbinding beats active", func(t *testing.T) {
		s := f.New(t)
		activate(t, s)
		iv := terminal.UnbindIntent{CmdID: "c-1", Source: "remote", Unsettled: "settle", ExpiresAt: t0.Add(time.Hour), Stage: terminal.StageAccepted}
		apply(t, s, terminal.PutIntent{Intent: iv})
		st := reboot(t, &s)
		if st.Lifecycle != terminal.Unbinding || st.Intent == nil || st.Intent.CmdID != "c-1" || st.Merchant.TID == "" {
			t.Fatalf("lifecycle %s intent %+v merchant %+v", st.Lifecycle, st.Intent, st.Merchant)
		}
		apply(t, s, terminal.SetTampered{On: true})
		if st := reboot(t, &s); st.Lifecycle != terminal.Tampered {
			t.Fatalf("lifecycle %s, want tampered", st.Lifecycle)
		}
		apply(t, s, terminal.SetTampered{On: false}, terminal.ClearIntentOp{})
		if st := reboot(t, &s); st.Lifecycle != terminal.Active || st.Intent != nil {
			t.Fatalf("lifecycle %s intent %+v, want active", st.Lifecycle, st.Intent)
		}
	})

	t.Run("an update intent survives a reboot and a wipe, and leaves the lifecycle alone", func(t *testing.T) {
		s := f.New(t)
		activate(t, s)
		apply(t, s, terminal.PutTxn{Txn: txn(1, 1, terminal.Approved)})
		u := terminal.UpdateIntent{CmdID: "u-1", PayloadHash: [32]byte{1, 2}, URL: "https://u.example.com/b.raucb",
			SHA256: "ab", Size: 42, Version: "1.5.0", When: "after-settlement", ExpiresAt: t0.Add(time.Hour).UTC(),
			From: "1.4.0", Batch: 1, Stage: terminal.UpdateDownload}
		apply(t, s, terminal.PutUpdate{Intent: u})
		u.Stage = terminal.UpdateRebooting
		apply(t, s, terminal.PutUpdate{Intent: u})
		st := reboot(t, &s)
		if st.Update == nil || !reflect.DeepEqual(*st.Update, u) {
			t.Fatalf("update intent %+v, want %+v", st.Update, u)
		}
		if st.Lifecycle != terminal.Active || len(st.Journal) != 1 {
			t.Fatalf("lifecycle %s journal %d: an update changes neither", st.Lifecycle, len(st.Journal))
		}
		if err := s.WipeMerchant(); err != nil {
			t.Fatal(err)
		}
		if st := reboot(t, &s); st.Update == nil || st.Update.CmdID != "u-1" {
			t.Fatalf("update intent after a wipe: %+v", st.Update)
		}
		apply(t, s, terminal.ClearUpdateOp{})
		if st := reboot(t, &s); st.Update != nil {
			t.Fatalf("update intent %+v after ClearUpdateOp", st.Update)
		}
	})

	t.Run("a wipe in progress reads no merchant data", func(t *testing.T) {
		s := f.New(t)
		activate(t, s)
		apply(t, s, terminal.PutTxn{Txn: txn(1, 1, terminal.Approved)})
		sum := &terminal.UnbindSummary{Settlement: "forced", Batch: "000001", TxnsRemoved: 1}
		apply(t, s, terminal.PutIntent{Intent: terminal.UnbindIntent{CmdID: "c-2", Stage: terminal.StageWiping, Summary: sum}})
		check := func(st terminal.State) {
			t.Helper()
			if st.Lifecycle != terminal.Unbinding || st.Merchant.TID != "" || st.Journal != nil || st.Intent.Summary == nil || st.Intent.Summary.TxnsRemoved != 1 {
				t.Fatalf("lifecycle %s merchant %+v journal %d intent %+v", st.Lifecycle, st.Merchant, len(st.Journal), st.Intent)
			}
		}
		check(load(t, s))
		check(reboot(t, &s))
		if err := s.WipeMerchant(); err != nil {
			t.Fatalf("WipeMerchant: %v", err)
		}
		apply(t, s, terminal.ClearIntentOp{})
		st := load(t, s)
		if st.Lifecycle != terminal.Unactivated || st.Merchant.TID != "" || st.Journal != nil {
			t.Fatalf("after the wipe: lifecycle %s merchant %+v", st.Lifecycle, st.Merchant)
		}
		activate(t, s) // a fresh store takes a new activation
		if st := reboot(t, &s); st.Lifecycle != terminal.Active {
			t.Fatalf("after re-activation: %s", st.Lifecycle)
		}
	})

	t.Run("identity facts survive a wipe", func(t *testing.T) {
		s := f.New(t)
		activate(t, s)
		lock := terminal.PwdLock{Fails: 3, LockedUntil: t0.Add(5 * time.Minute)}
		k1, k2 := terminal.TIDKey("PA00000001", "12345678"), terminal.TIDKey("PA00000001", "87654321")
		c := map[string]terminal.Counters{k1: {STAN: 41, Batch: 3}, k2: {STAN: 7, Batch: 1}}
		apply(t, s, terminal.PutPwdLock{Lock: lock}, terminal.PutSupervisorPwd{Hash: SupervisorHash},
			terminal.PutTIDCounters{Key: k1, Counters: c[k1]}, terminal.PutTimeFloor{At: t0})
		apply(t, s, terminal.PutTIDCounters{Key: k2, Counters: c[k2]}, terminal.PutTimeFloor{At: t0.Add(-time.Hour)})
		if err := s.WipeMerchant(); err != nil {
			t.Fatal(err)
		}
		st := reboot(t, &s)
		if !st.PwdLock.LockedUntil.Equal(lock.LockedUntil) || st.PwdLock.Fails != 3 || st.SupervisorPwdHash != SupervisorHash {
			t.Fatalf("password state: %+v %q", st.PwdLock, st.SupervisorPwdHash)
		}
		if !reflect.DeepEqual(st.TIDCounters, c) {
			t.Fatalf("TID counters %+v, want %+v", st.TIDCounters, c)
		}
		if !st.TimeFloor.Equal(t0) {
			t.Fatalf("time floor %s, want %s (it never goes down)", st.TimeFloor, t0)
		}
		if st.Lifecycle != terminal.Unactivated {
			t.Fatalf("lifecycle %s", st.Lifecycle)
		}
	})

	t.Run("activation failure puts the parameters back", func(t *testing.T) {
		s := f.New(t)
		apply(t, s, terminal.PutParams{Merchant: merchant})
		apply(t, s, terminal.DeleteParams{})
		if st := reboot(t, &s); st.Merchant.TID != "" || st.Incomplete {
			t.Fatalf("parameters left: %+v", st.Merchant)
		}
	})
}

package terminal_test

import (
	"errors"
	"testing"

	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/storetest"
)

func TestMemStoreSuite(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) storetest.Store {
			return terminal.NewMemStore(terminal.State{Serial: "PA00000001", TechPwdHash: "4321", SupervisorPwdHash: "123456"})
		},
		// Memory is the disk here: a reboot finds what was applied.
		Reopen: func(_ *testing.T, s storetest.Store) storetest.Store { return s },
	})
}

func TestMemStoreFailWritesNothing(t *testing.T) {
	s := terminal.NewMemStore(terminal.State{Serial: "PA00000001"})
	s.Fail = errors.New("no space left on device")
	err := s.Apply([]terminal.Op{terminal.PutParams{Merchant: terminal.Merchant{TID: "12345678"}}})
	if err == nil {
		t.Fatal("Apply with Fail set succeeded")
	}
	st, _ := s.Load()
	if st.Merchant.TID != "" {
		t.Fatalf("a failed Apply wrote %+v", st.Merchant)
	}
	if err := s.Apply([]terminal.Op{terminal.PutParams{Merchant: terminal.Merchant{TID: "12345678"}}}); err != nil {
		t.Fatalf("Fail is for one Apply only: %v", err)
	}
}

package terminal

import (
	"github.com/posagent/posagent/hal"
)

// notActivatedView is the root screen of an unactivated terminal.
func (m *Machine) notActivatedView() view {
	return &rootScreen{
		head: append([]string{"NOT ACTIVATED", "SERIAL"}, wrap(m.st.Serial)...),
		items: []menuItem{
			{hal.Key1, "ACTIVATE", func(m *Machine) { m.startActivation() }},
		},
	}
}

// tamperedView is the root screen after the tamper input fired: keys are
// gone and only a technician can bring the terminal back.
func (m *Machine) tamperedView() view {
	return &rootScreen{
		head: []string{"TAMPERED", "KEYS ERASED", "CALL TECHNICIAN"},
		items: []menuItem{
			{hal.Key1, "ACTIVATE", func(m *Machine) { m.startActivation() }},
		},
	}
}

// rootScreen is a root view made of fixed lines and numbered items.
type rootScreen struct {
	head  []string
	items []menuItem
}

func (v *rootScreen) render(m *Machine) hal.Screen {
	s := append([]string(nil), v.head...)
	s = append(s, "")
	for _, it := range v.items {
		s = append(s, string(rune(it.key))+" "+it.label)
	}
	return lines(s...)
}

func (v *rootScreen) key(m *Machine, k hal.Key) {
	for _, it := range v.items {
		if it.key == k {
			it.run(m)
			return
		}
	}
}

// mainMenu is the root of an active terminal.
func (m *Machine) mainMenu() view {
	return &menuView{title: "MAIN MENU", items: []menuItem{
		{hal.Key1, "SALE", func(m *Machine) { m.startSale() }},
		{hal.Key2, "TRANSACTION MGMT", func(m *Machine) { m.push(m.txnMgmtMenu()) }},
		{hal.Key3, "SETTLEMENT", func(m *Machine) { m.startSettlement() }},
		{hal.Key4, "SIGN IN", func(m *Machine) { m.startSignIn() }},
		{hal.Key5, "TECHNICIAN", func(m *Machine) { m.startTechnician() }},
	}}
}

func (m *Machine) txnMgmtMenu() view {
	return &menuView{title: "TRANSACTION MGMT", items: []menuItem{
		{hal.Key1, "VOID", func(m *Machine) { m.startVoid() }},
		{hal.Key2, "JOURNAL", func(m *Machine) { m.startJournal() }},
		{hal.Key3, "REPRINT LAST", func(m *Machine) { m.reprintLast() }},
	}}
}

func (m *Machine) technicianMenu() view {
	return &menuView{title: "TECHNICIAN", items: []menuItem{
		{hal.Key1, "UNBIND", func(m *Machine) { m.startUnbind() }},
		{hal.Key2, "INFO", func(m *Machine) { m.showInfo() }},
		{hal.Key3, "SUPERVISOR PWD", func(m *Machine) { m.changeSupervisorPwd() }},
	}}
}

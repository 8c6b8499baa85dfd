package terminal

import (
	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// notActivatedView is the root screen of an unactivated terminal.
func (m *Machine) notActivatedView() view {
	return &rootScreen{
		head: append([]string{m.t(i18n.NotActivated), m.t(i18n.Serial)}, wrap(m.st.Serial)...),
		items: []menuItem{
			{hal.Key1, m.t(i18n.Activate), func(m *Machine) { m.startActivation() }},
		},
	}
}

// tamperedView is the root screen after the tamper input fired: keys are
// gone and only a technician can bring the terminal back.
func (m *Machine) tamperedView() view {
	return &rootScreen{
		head: []string{m.t(i18n.Tampered), m.t(i18n.KeysErased), m.t(i18n.CallTechnician)},
		items: []menuItem{
			{hal.Key1, m.t(i18n.Activate), func(m *Machine) { m.startActivation() }},
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
	return &menuView{title: m.t(i18n.MainMenu), items: []menuItem{
		{hal.Key1, m.t(i18n.Sale), func(m *Machine) { m.startSale() }},
		{hal.Key2, m.t(i18n.TxnMgmt), func(m *Machine) { m.push(m.txnMgmtMenu()) }},
		{hal.Key3, m.t(i18n.Settlement), func(m *Machine) { m.startSettlement() }},
		{hal.Key4, m.t(i18n.SignIn), func(m *Machine) { m.startSignIn() }},
		{hal.Key5, m.t(i18n.Technician), func(m *Machine) { m.startTechnician() }},
	}}
}

func (m *Machine) txnMgmtMenu() view {
	return &menuView{title: m.t(i18n.TxnMgmt), items: []menuItem{
		{hal.Key1, m.t(i18n.Void), func(m *Machine) { m.startVoid() }},
		{hal.Key2, m.t(i18n.Journal), func(m *Machine) { m.startJournal() }},
		{hal.Key3, m.t(i18n.ReprintLast), func(m *Machine) { m.reprintLast() }},
	}}
}

func (m *Machine) technicianMenu() view {
	return &menuView{title: m.t(i18n.Technician), items: []menuItem{
		{hal.Key1, m.t(i18n.Unbind), func(m *Machine) { m.startUnbind() }},
		{hal.Key2, m.t(i18n.Info), func(m *Machine) { m.showInfo() }},
		{hal.Key3, m.t(i18n.ItemSupervisorPwd), func(m *Machine) { m.changeSupervisorPwd() }},
	}}
}

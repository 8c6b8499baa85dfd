package terminal

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/posagent/posagent/terminal/i18n"
	"github.com/posagent/posagent/terminal/remote"
)

// The TECHNICIAN menu (after TECH PWD): UNBIND (remote.go), INFO and the
// supervisor password.

func (m *Machine) startTechnician() {
	m.askTech(m.t(i18n.Technician), func(m *Machine) { m.replace(m.technicianMenu()) })
}

func (m *Machine) showInfo() {
	l := append([]string{m.t(i18n.Info), m.t(i18n.Serial)}, wrap(m.st.Serial)...)
	l = append(l, m.label(i18n.State, m.lifecycleWord(m.st.Lifecycle)))
	if m.st.Lifecycle == Active {
		l = append(l, m.label(i18n.TIDLabel, m.st.Merchant.TID),
			m.label(i18n.BatchLabel, fmt.Sprintf("%s (%d)", m.st.Counters.Batch, len(m.approvedTxns()))))
	}
	m.showResult(l...)
}

// minSupervisorPwd is the shortest supervisor password accepted: the
// default is 6 digits and a shorter one is easy to watch over a shoulder.
const minSupervisorPwd = 6

// changeSupervisorPwd: NEW PWD, then CONFIRM PWD; the shell hashes the new
// password (a slow, salted KDF: not the core's job) and stores it, and
// answers with SupervisorPwdStored.
func (m *Machine) changeSupervisorPwd() {
	title := m.t(i18n.ItemSupervisorPwd)
	first := &entryView{title: title, prompt: m.t(i18n.NewPwd), secret: true, min: minSupervisorPwd, max: 12}
	first.enter = func(m *Machine, pwd string) {
		confirm := &entryView{title: title, prompt: m.t(i18n.ConfirmPwd), secret: true, min: minSupervisorPwd, max: 12}
		confirm.enter = func(m *Machine, again string) {
			if again != pwd {
				m.showResult(title, m.t(i18n.NotTheSame), m.t(i18n.NothingChanged))
				return
			}
			m.replace(&infoView{lines: []string{title, "", m.t(i18n.Saving)}})
			m.emit(ChangeSupervisorPwd{New: pwd})
		}
		m.replace(confirm)
	}
	m.push(first)
}

// ChangeSupervisorPwd asks the shell to hash and store a new supervisor
// password; it answers with SupervisorPwdStored. The clear password lives
// only in this effect.
type ChangeSupervisorPwd struct{ New string }

// SupervisorPwdStored reports the new hash, or why it was not stored.
type SupervisorPwdStored struct {
	Hash string
	Err  error
}

func (ChangeSupervisorPwd) isEffect()        {}
func (SupervisorPwdStored) isEvent()         {}
func (e ChangeSupervisorPwd) String() string { return "ChangeSupervisorPwd{***}" }

func (m *Machine) onSupervisorPwdStored(ev SupervisorPwdStored) {
	if ev.Err != nil {
		m.log(slog.LevelError, "supervisor password not stored", slog.String("err", ev.Err.Error()))
		m.showResult(m.t(i18n.ItemSupervisorPwd), m.t(i18n.Error), m.t(i18n.NothingChanged))
		return
	}
	m.st.SupervisorPwdHash = ev.Hash
	m.st.PwdLock = PwdLock{}
	// The TECHNICIAN menu sets it without the old one (a technician
	// resets a forgotten password): HQ is told, signed, so a change nobody
	// ordered is seen. The clear password never leaves the shell's KDF.
	m.log(slog.LevelWarn, "supervisor password changed from the TECHNICIAN menu")
	m.emit(PublishEvent{Type: remote.EvtSupervisorPwdChanged, Data: json.RawMessage(`{"via":"technician-menu"}`)})
	m.showResult(m.t(i18n.ItemSupervisorPwd), m.t(i18n.PwdChanged))
}

package terminal

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/posagent/posagent/terminal/remote"
)

// The TECHNICIAN menu (after TECH PWD): UNBIND (remote.go), INFO and the
// supervisor password.

func (m *Machine) startTechnician() {
	m.askTech("TECHNICIAN", func(m *Machine) { m.replace(m.technicianMenu()) })
}

func (m *Machine) showInfo() {
	l := []string{"INFO", "SERIAL", m.st.Serial, "STATE " + m.st.Lifecycle.String()}
	if m.st.Lifecycle == Active {
		l = append(l, "TID "+m.st.Merchant.TID, fmt.Sprintf("BATCH %s (%d)", m.st.Counters.Batch, len(m.approvedTxns())))
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
	first := &entryView{title: "SUPERVISOR PWD", prompt: "NEW PWD", secret: true, min: minSupervisorPwd, max: 12}
	first.enter = func(m *Machine, pwd string) {
		confirm := &entryView{title: "SUPERVISOR PWD", prompt: "CONFIRM PWD", secret: true, min: minSupervisorPwd, max: 12}
		confirm.enter = func(m *Machine, again string) {
			if again != pwd {
				m.showResult("SUPERVISOR PWD", "NOT THE SAME", "NOTHING CHANGED")
				return
			}
			m.replace(&infoView{lines: []string{"SUPERVISOR PWD", "", "SAVING"}})
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
		m.showResult("SUPERVISOR PWD", "ERROR", "NOTHING CHANGED")
		return
	}
	m.st.SupervisorPwdHash = ev.Hash
	m.st.PwdLock = PwdLock{}
	// The TECHNICIAN menu sets it without the old one (a technician
	// resets a forgotten password): HQ is told, signed, so a change nobody
	// ordered is seen. The clear password never leaves the shell's KDF.
	m.log(slog.LevelWarn, "supervisor password changed from the TECHNICIAN menu")
	m.emit(PublishEvent{Type: remote.EvtSupervisorPwdChanged, Data: json.RawMessage(`{"via":"technician-menu"}`)})
	m.showResult("SUPERVISOR PWD", "PWD CHANGED")
}

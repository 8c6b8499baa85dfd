package terminal

import (
	"log/slog"

	"github.com/posagent/posagent/terminal/i18n"
)

// askSupervisor asks for the supervisor password and runs then on the
// right one. Three wrong passwords in a row lock every password, even the
// right one, for LockDuration from the third; the counter and the lock are
// persisted before the screen says so, so a restart does not reset them.
// Cancel does not reset the counter; a right password does.
func (m *Machine) askSupervisor(title string, then func(m *Machine)) {
	e := &entryView{title: title, prompt: m.t(i18n.SupervisorPwd), secret: true, min: 1, max: 12}
	e.enter = func(m *Machine, pwd string) {
		lock := m.st.PwdLock
		if !lock.LockedUntil.IsZero() {
			if m.now.Before(lock.LockedUntil) {
				m.showResult(m.t(i18n.Locked), m.t(i18n.TryAgainLater))
				return
			}
			// The lock has run out: a fresh start of three tries.
			lock = PwdLock{}
		}
		if m.checkPwd(m.st.SupervisorPwdHash, pwd) {
			if lock != (PwdLock{}) || m.st.PwdLock != (PwdLock{}) {
				m.setPwdLock(PwdLock{})
			}
			then(m)
			return
		}
		lock.Fails++
		m.log(slog.LevelWarn, "wrong supervisor password", slog.Int("fails", lock.Fails))
		if lock.Fails >= MaxPwdFails {
			lock.LockedUntil = m.now.Add(LockDuration)
			m.setPwdLock(lock)
			m.showResult(m.t(i18n.Locked), m.t(i18n.TryAgainLater))
			return
		}
		m.setPwdLock(lock)
		e.note = m.t(i18n.WrongPwd)
	}
	m.push(e)
}

func (m *Machine) setPwdLock(l PwdLock) {
	m.st.PwdLock = l
	m.emit(Persist{Ops: []Op{PutPwdLock{Lock: l}}})
}

// askTech asks for the technician password. It is not locked out like the
// supervisor's (spec/terminal.md locks only the supervisor password), but
// a wrong one is logged for the fleet's audit trail.
func (m *Machine) askTech(title string, then func(m *Machine)) {
	e := &entryView{title: title, prompt: m.t(i18n.TechPwd), secret: true, min: 1, max: 16}
	e.enter = func(m *Machine, pwd string) {
		if m.checkPwd(m.st.TechPwdHash, pwd) {
			then(m)
			return
		}
		m.log(slog.LevelWarn, "wrong technician password")
		e.note = m.t(i18n.WrongPwd)
	}
	m.push(e)
}

package terminal

import (
	"log/slog"

	"github.com/posagent/posagent/terminal/i18n"
)

// Password lockout (spec/terminal.md), the same rule for the supervisor
// and the technician password, each with its own counter: three wrong
// passwords in a row lock that password, even the right one, for
// LockDuration from the third; the counter and the lock are persisted
// before the screen says so, so a restart does not reset them. Cancel does
// not reset the counter; a right password does.

// pwdKind names one of the two passwords.
type pwdKind int

const (
	supervisorPwd pwdKind = iota
	technicianPwd
)

func (k pwdKind) String() string {
	if k == technicianPwd {
		return "technician"
	}
	return "supervisor"
}

// askSupervisor asks for the supervisor password and runs then on the
// right one.
func (m *Machine) askSupervisor(title string, then func(m *Machine)) {
	m.askPassword(supervisorPwd, &entryView{title: title, prompt: m.t(i18n.SupervisorPwd), secret: true, min: 1, max: 12}, then)
}

// askTech asks for the technician password and runs then on the right
// one. Its lockout keeps the keypad from guessing it: the TECHNICIAN menu
// can unbind and set a new supervisor password.
func (m *Machine) askTech(title string, then func(m *Machine)) {
	m.askPassword(technicianPwd, &entryView{title: title, prompt: m.t(i18n.TechPwd), secret: true, min: 1, max: 16}, then)
}

func (m *Machine) askPassword(kind pwdKind, e *entryView, then func(m *Machine)) {
	e.enter = func(m *Machine, pwd string) {
		lock := *m.pwdLock(kind)
		if !lock.LockedUntil.IsZero() {
			if m.now.Before(lock.LockedUntil) {
				m.showResult(m.t(i18n.Locked), m.t(i18n.TryAgainLater))
				return
			}
			// The lock has run out: a fresh start of three tries.
			lock = PwdLock{}
		}
		hash := m.st.SupervisorPwdHash
		if kind == technicianPwd {
			hash = m.st.TechPwdHash
		}
		if m.checkPwd(hash, pwd) {
			if lock != (PwdLock{}) || *m.pwdLock(kind) != (PwdLock{}) {
				m.setPwdLock(kind, PwdLock{})
			}
			then(m)
			return
		}
		lock.Fails++
		m.log(slog.LevelWarn, "wrong "+kind.String()+" password", slog.Int("fails", lock.Fails))
		if lock.Fails >= MaxPwdFails {
			lock.LockedUntil = m.now.Add(LockDuration)
			m.setPwdLock(kind, lock)
			m.showResult(m.t(i18n.Locked), m.t(i18n.TryAgainLater))
			return
		}
		m.setPwdLock(kind, lock)
		e.note = m.t(i18n.WrongPwd)
	}
	m.push(e)
}

// pwdLock is the lockout state of one password.
func (m *Machine) pwdLock(kind pwdKind) *PwdLock {
	if kind == technicianPwd {
		return &m.st.TechPwdLock
	}
	return &m.st.PwdLock
}

func (m *Machine) setPwdLock(kind pwdKind, l PwdLock) {
	*m.pwdLock(kind) = l
	var op Op = PutPwdLock{Lock: l}
	if kind == technicianPwd {
		op = PutTechPwdLock{Lock: l}
	}
	m.emit(Persist{Ops: []Op{op}})
}

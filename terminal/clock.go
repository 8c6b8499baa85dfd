package terminal

import (
	"log/slog"
	"strconv"
	"time"
)

// Clock trust (spec/remote.md "Clock trust"). Terminals often boot with a
// wrong clock (no RTC battery: 1970). The machine trusts the time it is
// given only once, since boot, the shell reported the clock synchronised
// (ClockSynced) or the acquirer's sign-in answer set it (SetClock), and
// never while it reads earlier than the persisted time floor.

// FloorStep is how far a trusted clock runs past the floor before the
// floor is raised again (a write to the identity store).
const FloorStep = time.Hour

// ClockSynced tells the machine that the system reports its clock
// synchronised (adjtimex on Linux).
type ClockSynced struct{}

// SetClock asks the shell to set the clock to At: the acquirer's sign-in
// answer (fields 12 and 13) gave the time of day and the date, the year
// came from the floor.
type SetClock struct{ At time.Time }

func (ClockSynced) isEvent() {}
func (SetClock) isEffect()   {}

// ClockTrusted reports whether the machine trusts its clock: until then a
// command that fails only on its validity window waits (the shell asks).
func (m *Machine) ClockTrusted() bool { return m.clockTrusted }

func (m *Machine) onClockSynced() {
	if m.clockTrusted || m.now.Before(m.st.TimeFloor) {
		return
	}
	m.trustClock("system clock synchronised")
}

func (m *Machine) trustClock(why string) {
	m.clockTrusted = true
	m.log(slog.LevelInfo, "clock trusted", slog.String("why", why), slog.Time("now", m.now))
	m.raiseFloor()
	m.publishStatus()
}

func (m *Machine) raiseFloor() {
	if m.holding {
		return // a write the hold must not risk; the floor rises after it
	}
	if m.now.After(m.st.TimeFloor) {
		m.st.TimeFloor = m.now
		m.emit(Persist{Ops: []Op{PutTimeFloor{At: m.now}}})
	}
}

// checkClock runs after every event: a trusted clock that now reads
// earlier than the floor (set back by hand) is trusted no more, and one
// that has run well past the floor raises it.
func (m *Machine) checkClock() {
	if !m.clockTrusted || m.halted || len(m.views) == 0 {
		return
	}
	if m.now.Before(m.st.TimeFloor) {
		m.clockTrusted = false
		m.log(slog.LevelWarn, "clock reads earlier than the time floor: not trusted", slog.Time("now", m.now), slog.Time("floor", m.st.TimeFloor))
		m.publishStatus()
		return
	}
	if m.now.Sub(m.st.TimeFloor) >= FloorStep {
		m.raiseFloor()
	}
}

// clockFromSignIn sets an untrusted clock from the sign-in answer: F13
// MMDD and F12 hhmmss, local time, the year taken from the floor (the
// next year when the date would fall more than a day before the floor:
// a floor of 31 December and an answer of 1 January).
func (m *Machine) clockFromSignIn(r Response) {
	if m.clockTrusted || len(r.LocalDate) != 4 || len(r.LocalTime) != 6 {
		return
	}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			return -1
		}
		return n
	}
	mo, d := num(r.LocalDate[:2]), num(r.LocalDate[2:])
	hh, mi, ss := num(r.LocalTime[:2]), num(r.LocalTime[2:4]), num(r.LocalTime[4:])
	if mo < 1 || mo > 12 || d < 1 || d > 31 || hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59 {
		m.log(slog.LevelWarn, "sign-in answer: no usable date and time", slog.String("f13", r.LocalDate), slog.String("f12", r.LocalTime))
		return
	}
	floor := m.st.TimeFloor.In(m.now.Location())
	at := time.Date(floor.Year(), time.Month(mo), d, hh, mi, ss, 0, m.now.Location())
	if at.Month() != time.Month(mo) {
		return // 31 April and the like
	}
	if at.Before(floor.Add(-24 * time.Hour)) {
		at = at.AddDate(1, 0, 0)
	}
	if at.Before(floor) {
		at = floor // within a day behind the floor: the floor is the better guess
	}
	m.emit(SetClock{At: at})
	m.now = at
	m.trustClock("set from the sign-in answer")
}

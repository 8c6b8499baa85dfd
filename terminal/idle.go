package terminal

// Idle reports whether the terminal can be stopped now without
// interrupting anyone or anything: the root screen of its lifecycle is on
// the display (no menu, flow or result open for a cashier or technician),
// no exchange is in flight or queued, no reversal is owed, no settlement,
// unbind or activation is under way and nothing is scheduled. A restart
// for a new version waits for it (cmd/posagentd/idle_restart.go).
func (m *Machine) Idle() bool {
	return len(m.views) <= 1 &&
		m.inflight == nil && len(m.waiting) == 0 &&
		m.st.Reversal == nil && m.st.Settling == 0 &&
		m.st.Intent == nil && m.st.Lifecycle != Unbinding && !m.st.Incomplete &&
		(m.st.Update == nil || m.st.Update.Stage == UpdateDownload || m.st.Update.Stage == UpdateReady) &&
		!m.unbindWhenIdle &&
		m.activation == nil && m.wipeAfter == nil && m.onAlarm == nil
}

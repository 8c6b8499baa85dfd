package terminal

// Flows that later issues fill in. Until then each says so on screen
// instead of doing nothing, so a cashier is never left guessing.

func (m *Machine) notAvailable(title string) { m.result(title, "NOT AVAILABLE") }

func (m *Machine) startTechnician() {
	m.askTech("TECHNICIAN", func(m *Machine) { m.replace(m.technicianMenu()) })
}

func (m *Machine) showInfo() {
	m.result("INFO", "SERIAL", m.st.Serial, "STATE "+m.st.Lifecycle.String())
}

func (m *Machine) changeSupervisorPwd() { m.notAvailable("SUPERVISOR PWD") }

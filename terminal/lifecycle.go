package terminal

// Lifecycle is the terminal's lifecycle state (spec/terminal.md §Lifecycle).
type Lifecycle uint8

const (
	// Unactivated: factory-fresh or after an unbind; identity only.
	Unactivated Lifecycle = iota
	// Active: merchant parameters, keys and the settlement-card binding are present.
	Active
	// Unbinding: an unbind intent is persisted and resumes on every boot.
	Unbinding
	// Tampered: the tamper input fired; every key is zeroised.
	Tampered
)

// String returns the word used in the MQTT status payload.
func (l Lifecycle) String() string {
	switch l {
	case Unactivated:
		return "unactivated"
	case Active:
		return "active"
	case Unbinding:
		return "unbinding"
	case Tampered:
		return "tampered"
	}
	return "unknown"
}

// ParseLifecycle is the inverse of String.
func ParseLifecycle(s string) (Lifecycle, bool) {
	for l := Unactivated; l <= Tampered; l++ {
		if l.String() == s {
			return l, true
		}
	}
	return 0, false
}

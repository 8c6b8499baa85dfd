// Package ota is the terminal's side of an over-the-air update that is not
// the core's decision: fetching a bundle over HTTPS (resumed with Range,
// size and SHA-256 checked) and driving RAUC through its D-Bus API
// (de.pengutronix.rauc.Installer): install into the inactive slot, mark
// the booted slot good or bad. posagentd wires it to the core's effects
// (cmd/posagentd/update.go).
package ota

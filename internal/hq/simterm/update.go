package simterm

import (
	"encoding/json"
	"time"

	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// UpdateSim is how the terminals of a fleet answer an update command, in
// the wire shapes of the real terminal (terminal/update.go): accepted at
// once; after Download an in_progress ack with the stage "downloaded";
// after Install the terminal reboots (a status with online false, then,
// after Reboot, its status with the version that runs); then the final
// ack, succeeded with terminal.UpdateResult{version, from}, or failed
// with the reason. One update at a time: another one meanwhile is
// rejected wrong-state, as on the terminal; an update to the version
// already running succeeds at once.
type UpdateSim struct {
	Download, Install, Reboot time.Duration
	// Fail is the failure reason of the update of serial to version
	// ("" or nil: it succeeds), one of remote's update reasons. The
	// reason decides where it ends, as on a terminal: download-failed,
	// bad-size, bad-hash and update-disabled after the download,
	// install-failed and not-idle before the reboot, rolled-back and
	// sign-in-failed after it with the old version running, mark-failed
	// after it with the new one.
	Fail func(serial, version string) string
}

// UpdatePeak is the most terminals between an update's accepted ack and
// its final ack at once; UpdatesBegun how many update commands were
// accepted (a command sent twice and executed twice counts twice).
func (f *Fleet) UpdatePeak() int64   { return f.updatePeak.Load() }
func (f *Fleet) UpdatesBegun() int64 { return f.updatesBegun.Load() }

// Version is the version the terminal runs.
func (t *Terminal) Version() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version
}

// Updates is how many update commands the terminal accepted.
func (t *Terminal) Updates() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.updates
}

func (t *Terminal) onUpdate(c remote.Command, sum [32]byte) {
	a, err := c.Update()
	if err != nil {
		t.ack(c, sum, remote.AckRejected, remote.ReasonInvalid, nil)
		return
	}
	t.mu.Lock()
	from := t.version
	switch {
	case t.updating != "":
		t.mu.Unlock()
		t.ack(c, sum, remote.AckRejected, remote.ReasonWrongState, nil)
		return
	case a.Version == from:
		t.mu.Unlock()
		t.ack(c, sum, remote.AckSucceeded, "", terminal.UpdateResult{Version: from, From: from})
		return
	}
	t.updating, t.executing[c.ID] = c.ID, true
	t.updates++
	t.mu.Unlock()
	f := t.fleet
	f.updatesBegun.Add(1)
	n := f.updating.Add(1)
	for p := f.updatePeak.Load(); n > p && !f.updatePeak.CompareAndSwap(p, n); p = f.updatePeak.Load() {
	}
	t.ack(c, sum, remote.AckAccepted, "", nil)
	go t.update(c, sum, a, from)
}

// update runs the simulated download, install and reboot of an accepted
// update and sends its final ack.
func (t *Terminal) update(c remote.Command, sum [32]byte, a remote.UpdateArgs, from string) {
	sim := t.fleet.opts.Update
	reason := ""
	if sim.Fail != nil {
		reason = sim.Fail(t.Serial, a.Version)
	}
	time.Sleep(sim.Download)
	switch reason {
	case remote.ReasonDownloadFailed, remote.ReasonBadSize, remote.ReasonBadHash, remote.ReasonUpdateDisabled:
		t.updateEnd(c, sum, from, from, reason)
		return
	}
	stage, _ := json.Marshal(map[string]terminal.UpdateStage{"stage": terminal.UpdateReady})
	t.ack(c, sum, remote.AckInProgress, "", json.RawMessage(stage))
	time.Sleep(sim.Install)
	switch reason {
	case remote.ReasonInstallFailed, remote.ReasonNotIdle:
		t.updateEnd(c, sum, from, from, reason)
		return
	}
	t.publishStatus(false) // the reboot
	time.Sleep(sim.Reboot)
	running := a.Version
	if reason == remote.ReasonRolledBack || reason == remote.ReasonSignInFailed {
		running = from
	}
	t.mu.Lock()
	t.version = running
	t.mu.Unlock()
	t.publishStatus(true)
	t.updateEnd(c, sum, running, from, reason)
}

// updateEnd sends the final ack: succeeded without a reason, else failed.
func (t *Terminal) updateEnd(c remote.Command, sum [32]byte, running, from, reason string) {
	f := t.fleet
	t.mu.Lock()
	t.updating = ""
	t.mu.Unlock()
	f.updating.Add(-1)
	if reason == "" {
		t.ack(c, sum, remote.AckSucceeded, "", terminal.UpdateResult{Version: running, From: from})
		return
	}
	t.ack(c, sum, remote.AckFailed, reason, terminal.UpdateResult{Version: running, From: from, Detail: "simulated: " + reason})
}

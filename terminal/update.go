package terminal

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/posagent/posagent/terminal/i18n"
	"github.com/posagent/posagent/terminal/remote"
)

// The over-the-air update (remote command "update"): a RAUC bundle is
// downloaded (in the background: the cashier goes on selling), installed
// into the inactive slot at the first idle moment (no exchange in flight,
// no pending reversal, nobody at the keypad; after the next settlement if
// HQ asked), and booted. The boot after compares the running version with
// the intent: the new one signs in with the acquirer, then marks its slot
// good and acks succeeded; the old one (the bootloader fell back) or a
// failed step acks failed with the reason. Nothing of the batch, the
// journal or the reversal slot is touched at any step.
//
// The intent lives in the identity store, so every step survives a power
// cut: what a boot finds decides what it does next (resumeUpdate).

// UpdateStage is where a persisted update stands.
type UpdateStage string

// Update stages.
const (
	// UpdateDownload: accepted; the bundle is being downloaded (again
	// after a reboot: the download resumes and checks what it has).
	UpdateDownload UpdateStage = "download"
	// UpdateReady: the bundle is complete and its hash checked; the
	// install waits for an idle moment.
	UpdateReady UpdateStage = "downloaded"
	// UpdateInstalling: RAUC was asked to install. A boot on the old
	// version in this stage was a power cut inside the install: it starts
	// over from the download.
	UpdateInstalling UpdateStage = "installing"
	// UpdateRebooting: RAUC installed the bundle; the reboot boots it.
	UpdateRebooting UpdateStage = "rebooting"
	// UpdateRollingBack: the new version failed (Reason); its slot was
	// marked bad and the terminal reboots into the old one, which acks.
	UpdateRollingBack UpdateStage = "rolling-back"
)

// Valid reports whether s is a stage this version knows.
func (s UpdateStage) Valid() bool {
	switch s {
	case UpdateDownload, UpdateReady, UpdateInstalling, UpdateRebooting, UpdateRollingBack:
		return true
	}
	return false
}

// UpdateIntent is the persisted update in progress (identity store).
type UpdateIntent struct {
	CmdID       string            `json:"cmd_id"`
	PayloadHash [32]byte          `json:"payload_hash"`
	URL         string            `json:"url"`
	SHA256      string            `json:"sha256"`
	Size        int64             `json:"size"`
	Version     string            `json:"version"` // the target
	When        remote.UpdateWhen `json:"when"`
	ExpiresAt   time.Time         `json:"expires_at"`
	// From is the version that ran when the command was accepted.
	From string `json:"from"`
	// Batch is the batch open when the command was accepted: an update
	// "after-settlement" installs once it is closed.
	Batch BatchNo     `json:"batch"`
	Stage UpdateStage `json:"stage"`
	// Reason is the failure a rolling-back stage reports after the reboot.
	Reason string `json:"reason,omitempty"`
}

// copy is what an effect carries: the machine moves its own intent on
// within the same step, before the shell writes the effect.
func (u *UpdateIntent) copy() *UpdateIntent {
	c := *u
	return &c
}

// UpdateCmd is the content of an update command.
type UpdateCmd struct {
	URL     string
	SHA256  string
	Size    int64
	Version string
	When    remote.UpdateWhen
}

// DownloadUpdate asks the shell to download the bundle (resuming what a
// previous attempt left), check its size and hash, and answer with
// UpdateDownloaded.
type DownloadUpdate struct {
	CmdID  string
	URL    string
	SHA256 string
	Size   int64
}

// InstallUpdate asks the shell to have RAUC install the downloaded bundle
// into the inactive slot and answer with UpdateInstalled.
type InstallUpdate struct {
	CmdID  string
	SHA256 string
}

// MarkSlot asks the shell to mark the booted slot good (or bad) through
// RAUC and answer with UpdateMarked.
type MarkSlot struct{ Good bool }

// PutUpdate rewrites the update intent (identity store).
type PutUpdate struct{ Intent UpdateIntent }

// ClearUpdateOp removes the update intent (identity store).
type ClearUpdateOp struct{}

func (DownloadUpdate) isEffect() {}
func (InstallUpdate) isEffect()  {}
func (MarkSlot) isEffect()       {}
func (PutUpdate) isOp()          {}
func (ClearUpdateOp) isOp()      {}

// UpdateDownloaded is the outcome of a DownloadUpdate: Reason is "" when
// the bundle is complete and checked, else one of remote's update reasons
// (download-failed, bad-size, bad-hash, update-disabled) with Detail.
type UpdateDownloaded struct {
	CmdID  string
	Reason string
	Detail string
}

// UpdateInstalled is the outcome of an InstallUpdate; Err is RAUC's error.
type UpdateInstalled struct {
	CmdID string
	Err   error
}

// UpdateMarked is the outcome of a MarkSlot.
type UpdateMarked struct{ Err error }

func (UpdateDownloaded) isEvent() {}
func (UpdateInstalled) isEvent()  {}
func (UpdateMarked) isEvent()     {}

// DefaultUpdateSignIn is how long a new version may take to sign in
// before it gives up and reboots into the old one (WithUpdateSignIn).
const DefaultUpdateSignIn = 5 * time.Minute

// WithUpdateSignIn sets how long a freshly booted version may try to sign
// in before its slot is marked bad and the old one booted.
func WithUpdateSignIn(d time.Duration) Option {
	return func(m *Machine) {
		if d > 0 {
			m.updateSignIn = d
		}
	}
}

// UpdateResult is the result of an update's final ack.
type UpdateResult struct {
	Version string `json:"version"`          // running now
	From    string `json:"from,omitempty"`   // running when the command was accepted
	Detail  string `json:"detail,omitempty"` // why it failed, for a person
}

func (m *Machine) onUpdateCommand(c RemoteCommand) {
	u := c.Update
	switch {
	case m.st.Lifecycle != Active || u == nil:
		m.rejectCommand(c, ReasonWrongState)
		return
	case m.st.Update != nil:
		// One update at a time: the one in progress is the one HQ
		// sent (the same id was answered in onCommand).
		m.rejectCommand(c, ReasonWrongState)
		return
	case u.Version == m.st.Version:
		m.log(slog.LevelInfo, "update: already running the version", slog.String("version", u.Version))
		res, _ := json.Marshal(UpdateResult{Version: m.st.Version, From: m.st.Version})
		m.emit(SendAck{CmdID: c.ID, State: AckSucceeded, Result: res, Seen: true, PayloadHash: c.PayloadHash})
		return
	}
	iv := &UpdateIntent{CmdID: c.ID, PayloadHash: c.PayloadHash, URL: u.URL, SHA256: u.SHA256, Size: u.Size,
		Version: u.Version, When: u.When, ExpiresAt: c.ExpiresAt, From: m.st.Version, Batch: m.st.Counters.Batch,
		Stage: UpdateDownload}
	if iv.When == "" {
		iv.When = remote.UpdateIdle
	}
	m.st.Update = iv
	m.log(slog.LevelInfo, "update accepted", slog.String("id", c.ID), slog.String("from", iv.From),
		slog.String("to", iv.Version), slog.String("when", string(iv.When)))
	m.emit(SendAck{CmdID: c.ID, State: AckAccepted, SetUpdate: iv.copy()})
	m.emit(DownloadUpdate{CmdID: iv.CmdID, URL: iv.URL, SHA256: iv.SHA256, Size: iv.Size})
}

// resumeUpdate is the boot's part of an update: what the intent's stage
// and the running version say happened.
func (m *Machine) resumeUpdate() {
	iv := m.st.Update
	if iv == nil {
		return
	}
	onTarget := m.st.Version == iv.Version
	switch {
	case iv.Stage == UpdateRollingBack:
		m.updateFail(iv.Reason, "the new version's slot was marked bad")
	case onTarget && (iv.Stage == UpdateInstalling || iv.Stage == UpdateRebooting):
		// The new version runs (a power cut after RAUC finished counts):
		// it proves itself with a sign-in.
		m.verifyUpdate()
	case iv.Stage == UpdateRebooting:
		m.updateFail(remote.ReasonRolledBack, "the bootloader booted the old slot")
	case m.st.Lifecycle != Active && m.st.Lifecycle != Unbinding:
		// Unbound (or tampered) before the install: nothing to update.
		m.updateFail(ReasonWrongState, "not active any more")
	default:
		// Download, downloaded, or an install a power cut interrupted:
		// from the download again (it resumes and checks what it has).
		if iv.Stage != UpdateDownload {
			iv.Stage = UpdateDownload
			m.emit(Persist{Ops: []Op{PutUpdate{Intent: *iv}}})
		}
		m.emit(DownloadUpdate{CmdID: iv.CmdID, URL: iv.URL, SHA256: iv.SHA256, Size: iv.Size})
	}
}

func (m *Machine) onUpdateDownloaded(ev UpdateDownloaded) {
	iv := m.st.Update
	if iv == nil || iv.CmdID != ev.CmdID || iv.Stage != UpdateDownload {
		return
	}
	if ev.Reason != "" {
		m.log(slog.LevelWarn, "update download failed", slog.String("reason", ev.Reason), slog.String("detail", ev.Detail))
		m.updateFail(ev.Reason, ev.Detail)
		return
	}
	iv.Stage = UpdateReady
	m.log(slog.LevelInfo, "update downloaded: the install waits for an idle moment", slog.String("version", iv.Version))
	m.emit(SendAck{CmdID: iv.CmdID, State: AckInProgress, Result: json.RawMessage(`{"stage":"downloaded"}`), SetUpdate: iv.copy()})
}

// updateWhenIdle installs a downloaded update at the first idle moment
// (after the settlement it waits for), or gives up when the command
// expires first. Step calls it after every event.
func (m *Machine) updateWhenIdle() {
	iv := m.st.Update
	if iv == nil || iv.Stage != UpdateReady || m.holding || m.halted {
		return
	}
	if !m.now.Before(iv.ExpiresAt) {
		m.updateFail(remote.ReasonNotIdle, "expired waiting for an idle moment")
		return
	}
	if m.st.Lifecycle != Active || !m.Idle() {
		return
	}
	if iv.When == remote.UpdateAfterSettlement && m.st.Counters.Batch == iv.Batch {
		return // batch iv.Batch is not settled yet
	}
	iv.Stage = UpdateInstalling
	m.emit(Persist{Ops: []Op{PutUpdate{Intent: *iv}}})
	m.log(slog.LevelInfo, "update: installing", slog.String("version", iv.Version))
	// On top of the menu: nobody starts a sale that the reboot would cut.
	m.push(&infoView{lines: []string{m.t(i18n.Installing), iv.Version, "", m.t(i18n.DoNotPowerOff)}})
	m.emit(InstallUpdate{CmdID: iv.CmdID, SHA256: iv.SHA256})
}

func (m *Machine) onUpdateInstalled(ev UpdateInstalled) {
	iv := m.st.Update
	if iv == nil || iv.CmdID != ev.CmdID || iv.Stage != UpdateInstalling {
		return
	}
	if ev.Err != nil {
		m.log(slog.LevelError, "update install failed", slog.String("err", ev.Err.Error()))
		m.popTo(1)
		m.updateFail(remote.ReasonInstallFailed, ev.Err.Error())
		return
	}
	iv.Stage = UpdateRebooting
	m.emit(Persist{Ops: []Op{PutUpdate{Intent: *iv}}})
	m.log(slog.LevelInfo, "update installed: rebooting into it", slog.String("version", iv.Version))
	m.rebootWith(m.t(i18n.Installing), iv.Version, "", m.t(i18n.Rebooting))
}

// verifyUpdate signs in on the new version; the cashier waits (a rollback
// reboot must not cut a sale). It tries until the sign-in window closes.
func (m *Machine) verifyUpdate() {
	m.updateUntil = m.now.Add(m.signInWindow())
	m.push(&infoView{lines: []string{m.t(i18n.SigningIn), m.st.Update.Version, "", m.t(i18n.Processing)}})
	m.updateSignInTry()
}

func (m *Machine) signInWindow() time.Duration {
	if m.updateSignIn > 0 {
		return m.updateSignIn
	}
	return DefaultUpdateSignIn
}

func (m *Machine) updateSignInTry() {
	m.signIn(func(m *Machine, f *failure) {
		iv := m.st.Update
		if iv == nil {
			return
		}
		if f == nil {
			m.log(slog.LevelInfo, "update: the new version signed in: marking its slot good", slog.String("version", iv.Version))
			m.emit(MarkSlot{Good: true})
			return
		}
		if m.now.Before(m.updateUntil) {
			at := m.now.Add(settleRetryMin)
			if at.After(m.updateUntil) {
				at = m.updateUntil
			}
			m.log(slog.LevelWarn, "update: sign-in failed, retrying", slog.String("why", f.String()), slog.Duration("in", at.Sub(m.now)))
			m.alarm = at
			m.onAlarm = func(m *Machine) { m.updateSignInTry() }
			return
		}
		m.log(slog.LevelError, "update: the new version did not sign in: back to the old one", slog.String("why", f.String()))
		iv.Stage, iv.Reason = UpdateRollingBack, remote.ReasonSignInFailed
		m.emit(Persist{Ops: []Op{PutUpdate{Intent: *iv}}}, MarkSlot{Good: false})
	})
}

func (m *Machine) onUpdateMarked(ev UpdateMarked) {
	iv := m.st.Update
	if iv == nil {
		return
	}
	switch iv.Stage {
	case UpdateRollingBack:
		if ev.Err != nil {
			// The bootloader's attempt counter falls back all the same.
			m.log(slog.LevelError, "update: marking the slot bad failed", slog.String("err", ev.Err.Error()))
		}
		m.rebootWith(m.t(i18n.SignInFailed), "", m.t(i18n.Rebooting))
	case UpdateInstalling, UpdateRebooting:
		m.popTo(1)
		if ev.Err != nil {
			m.log(slog.LevelError, "update: marking the slot good failed", slog.String("err", ev.Err.Error()))
			m.updateFail(remote.ReasonMarkFailed, ev.Err.Error())
			return
		}
		m.st.Update = nil
		res, _ := json.Marshal(UpdateResult{Version: m.st.Version, From: iv.From})
		m.log(slog.LevelInfo, "update succeeded", slog.String("version", m.st.Version), slog.String("from", iv.From))
		m.emit(SendAck{CmdID: iv.CmdID, State: AckSucceeded, Result: res, Seen: true, PayloadHash: iv.PayloadHash, ClearUpdate: true})
	}
}

// updateFail ends the update with a failed ack naming the version that
// runs; the intent goes with the ack.
func (m *Machine) updateFail(reason, detail string) {
	iv := m.st.Update
	m.st.Update = nil
	m.updateUntil = time.Time{}
	res, _ := json.Marshal(UpdateResult{Version: m.st.Version, From: iv.From, Detail: detail})
	m.log(slog.LevelWarn, "update failed", slog.String("id", iv.CmdID), slog.String("reason", reason), slog.String("version", m.st.Version))
	m.emit(SendAck{CmdID: iv.CmdID, State: AckFailed, Reason: reason, Result: res, Seen: true, PayloadHash: iv.PayloadHash, ClearUpdate: true})
}

// UpdateStatus is where the update in progress stands, for the shell (""
// when none).
func (m *Machine) UpdateStatus() UpdateStage {
	if m.st.Update == nil {
		return ""
	}
	return m.st.Update.Stage
}

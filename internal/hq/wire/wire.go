// Package wire is what hqd's HTTP JSON API carries: terminals, activation
// codes, commands, jobs and their items and progress, audit entries, and
// the states they name. hqd's store and job service use these types (as
// aliases) and hqctl decodes them, so the two cannot drift; the package
// needs no database, and hqctl links none (TestHQCtlDependencies).
package wire

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Command states. Rejected, succeeded and failed are the terminal's final
// acks; expired (no final ack before expires_at) and cancelled are HQ's.
const (
	CmdSigning    = "signing" // waits for operators' signatures; never sent yet
	CmdSent       = "sent"
	CmdAccepted   = "accepted"
	CmdInProgress = "in_progress"
	CmdSucceeded  = "succeeded"
	CmdFailed     = "failed"
	CmdRejected   = "rejected"
	CmdExpired    = "expired"
	CmdCancelled  = "cancelled"
)

// Command is one signed command HQ sent or will send.
type Command struct {
	ID           string    `json:"id"`
	Serial       string    `json:"serial"`
	Type         string    `json:"type"`
	JobID        string    `json:"job_id,omitempty"`
	Payload      []byte    `json:"payload"`
	Envelope     []byte    `json:"envelope,omitempty"`
	RequiredSigs int       `json:"required_sigs"`
	State        string    `json:"state"`
	Reason       string    `json:"reason"`
	Result       string    `json:"result,omitempty"` // the final ack's result JSON (proof of wipe)
	IssuedAt     time.Time `json:"issued_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	SendCount    int       `json:"send_count"`
	NextSendAt   time.Time `json:"next_send_at,omitzero"`
	FinalAt      time.Time `json:"final_at,omitzero"`
}

// Job states.
const (
	JobSigning   = "signing"   // waits for operators' signatures on its commands
	JobRunning   = "running"   // sending at its rate
	JobAborted   = "aborted"   // stopped sending: too many failed (resume continues it)
	JobCancelled = "cancelled" // stopped by an operator; pending items cancelled
	JobDone      = "done"      // every item final
	JobRejected  = "rejected"  // an approver refused it while it waited for signatures: nothing was sent
)

// Job item states: pending (not sent yet), then the command's states, and
// no_answer for a command that expired without a final ack.
const (
	ItemPending    = "pending"
	ItemSent       = CmdSent
	ItemAccepted   = CmdAccepted
	ItemInProgress = CmdInProgress
	ItemSucceeded  = CmdSucceeded
	ItemFailed     = CmdFailed
	ItemRejected   = CmdRejected
	ItemNoAnswer   = "no_answer"
	ItemCancelled  = CmdCancelled
)

// Signing modes of a job.
const (
	SignHQD       = "hqd"       // hqd signs each command with its ops key when it sends it
	SignOperators = "operators" // operators sign every command before the job runs
)

// Job is a rollout of one command type over many terminals.
type Job struct {
	ID           string        `json:"id"`
	Type         string        `json:"type"`
	Args         string        `json:"args"` // the commands' args JSON
	State        string        `json:"state"`
	Signing      string        `json:"signing"`
	RequiredSigs int           `json:"required_sigs"`
	RatePerMin   int           `json:"rate_per_min"`
	MaxInflight  int           `json:"max_inflight"`
	AbortPct     int           `json:"abort_pct"` // stop sending when more than this % of finished items failed
	AbortMin     int           `json:"abort_min"` // ... once at least this many finished
	CommandTTL   time.Duration `json:"command_ttl"`
	Total        int           `json:"total"`
	CreatedBy    string        `json:"created_by"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	FinishedAt   time.Time     `json:"finished_at,omitzero"`
	Note         string        `json:"note"`
	NextSendAt   time.Time     `json:"next_send_at,omitzero"`
	LeaseOwner   string        `json:"lease_owner"`
	LeaseUntil   time.Time     `json:"lease_until,omitzero"`
}

// Counts are a job's items by state.
type Counts map[string]int

// Finished is the number of items in a final state (cancelled excluded).
func (c Counts) Finished() int {
	return c[ItemSucceeded] + c[ItemFailed] + c[ItemRejected] + c[ItemNoAnswer]
}

// Bad is the number of items that ended without succeeding.
func (c Counts) Bad() int { return c[ItemFailed] + c[ItemRejected] + c[ItemNoAnswer] }

// Inflight is the number of items sent and not final.
func (c Counts) Inflight() int { return c[ItemSent] + c[ItemAccepted] + c[ItemInProgress] }

// Sent is the number of items whose command was published.
func (c Counts) Sent() int { return c.Inflight() + c.Finished() }

// Item is one terminal of a job.
type Item struct {
	Serial    string    `json:"serial"`
	Seq       int       `json:"seq"`
	CmdID     string    `json:"cmd_id"`
	State     string    `json:"state"`
	Reason    string    `json:"reason"`
	UpdatedAt time.Time `json:"updated_at"`
	// Result is the final ack's result as the terminal signed it (an
	// unbind's proof of wipe, the keys and policy an hq_keys left in
	// force); empty until then.
	Result json.RawMessage `json:"result,omitempty"`
}

// Code is one activation code: a one-time 8-digit code bound to a serial
// and the merchant parameters its provision command will carry.
type Code struct {
	ID           int64     `json:"id"`
	Code         string    `json:"code"`
	Serial       string    `json:"serial"`
	TID          string    `json:"tid"`
	MID          string    `json:"mid"`
	MerchantName string    `json:"merchant_name"`
	AcquirerAddr string    `json:"acquirer_addr"`
	AcquirerTLS  bool      `json:"acquirer_tls"`
	AcquirerTPDU string    `json:"acquirer_tpdu"`
	IssuedAt     time.Time `json:"issued_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	IssuedBy     string    `json:"issued_by"`
	Status       string    `json:"status"`
	Attempts     int       `json:"attempts"`
	UsedAt       time.Time `json:"used_at,omitzero"`
	ActivationID string    `json:"activation_id,omitempty"`
	ProvisionID  string    `json:"provision_id,omitempty"`
	Provision    []byte    `json:"-"` // the signed provision envelope sent in answer
}

// Terminal is one row of the fleet: the device keys learnt at factory
// provisioning and what the terminal last reported.
type Terminal struct {
	Serial          string            `json:"serial"`
	Ed25519Pub      ed25519.PublicKey `json:"ed25519_pub"`
	X25519Pub       []byte            `json:"x25519_pub,omitempty"`
	State           string            `json:"state"`
	Online          bool              `json:"online"`
	TID             string            `json:"tid"`
	MID             string            `json:"mid"`
	MerchantName    string            `json:"merchant_name"`
	BatchNo         string            `json:"batch_no"`
	BatchCount      int               `json:"batch_count"`
	Version         string            `json:"version"`
	Clock           string            `json:"clock"`
	PendingReversal bool              `json:"pending_reversal"`
	DiskFreeKiB     int64             `json:"disk_free_kib"`
	StatusAt        time.Time         `json:"status_at"`
	LastEvent       string            `json:"last_event"`
	LastSeen        time.Time         `json:"last_seen"`
	RegisteredAt    time.Time         `json:"registered_at"`
}

// Filter selects terminals; zero fields match everything. Search matches a
// serial, TID or MID prefix, or a part of the merchant name.
type Filter struct {
	State  string `json:"state,omitempty"`
	Online *bool  `json:"online,omitempty"`
	TID    string `json:"tid,omitempty"`
	MID    string `json:"mid,omitempty"`
	Search string `json:"search,omitempty"`
}

// AuditEntry is one line of the append-only audit trail: who did what,
// when, from where. The database refuses updates and deletes of the table
// (a trigger on both dialects).
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // operator name, or "hqd" for the service itself
	Source string    `json:"source"` // remote address, "cli", "mqtt"
	Action string    `json:"action"` // e.g. code.issue, job.create, activation.answer
	Target string    `json:"target"` // serial, job id, kid …
	Detail string    `json:"detail"` // JSON or a sentence
}

// JobRequest asks for a job (POST /api/v1/jobs).
type JobRequest struct {
	Type        string          `json:"type"` // unbind, status, hq_keys, update
	Args        json.RawMessage `json:"args,omitempty"`
	Serials     []string        `json:"serials,omitempty"`
	Filter      *Filter         `json:"filter,omitempty"`
	RatePerMin  int             `json:"rate_per_min,omitempty"`
	MaxInflight int             `json:"max_inflight,omitempty"`
	AbortPct    int             `json:"abort_pct,omitempty"`
	AbortMin    int             `json:"abort_min,omitempty"`
	CommandTTL  string          `json:"command_ttl,omitempty"` // Go duration, default 24h
	Note        string          `json:"note,omitempty"`
	// MinSignatures raises the signatures every command needs above the
	// fleet's policy: the back office's requests need the requester's and
	// an approver's (2), whatever the policy says. Above 1 the job waits
	// for operators' signatures.
	MinSignatures int `json:"min_signatures,omitempty"`
}

// Defaults of a job request.
const (
	DefaultRate     = 60
	DefaultInflight = 50
	DefaultAbortPct = 10
	DefaultAbortMin = 20
	DefaultTTL      = 24 * time.Hour
)

// SignatureIn is one signature an operator made elsewhere (hqctl job sign,
// the back office's WebCrypto key) over a command payload.
type SignatureIn struct {
	CmdID string `json:"cmd_id"`
	KID   string `json:"kid"`
	Sig   []byte `json:"sig"`
}

// Progress is what an operator sees of a job (GET /api/v1/jobs/{id}).
type Progress struct {
	Job      Job    `json:"job"`
	Counts   Counts `json:"counts"`
	Sent     int    `json:"sent"`
	Done     int    `json:"done"`
	Failed   int    `json:"failed"`
	Inflight int    `json:"inflight"`
	ETA      string `json:"eta,omitempty"` // at the job's rate, for what is not sent yet
}

// Line is the one-line progress: "N/M done, K failed, ETA …".
func (p Progress) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d/%d done, %d failed, %d in flight", p.Job.ID, p.Job.State, p.Done, p.Job.Total, p.Failed, p.Inflight)
	if p.ETA != "" {
		fmt.Fprintf(&b, ", ETA %s", p.ETA)
	}
	return b.String()
}

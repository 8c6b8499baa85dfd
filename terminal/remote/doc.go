// Package remote holds the wire types and rules of the HQ ⇄ terminal channel
// (spec/remote.md): signed envelopes, the command check table in its
// contractual order, typed command args, and the ack, event and status
// payloads with their topics.
//
// It is pure: no IO, no clock (callers pass now), no MQTT client. Both
// posagentd (the terminal) and hqctl (HQ) import it, so the two ends cannot
// drift apart on a JSON key or a reason word.
package remote

package remote

import "strings"

// Topic kinds, the last level of pos/v1/<serial>/<kind> (remote.md §Topics).
const (
	KindCmd    = "cmd"
	KindAck    = "ack"
	KindEvt    = "evt"
	KindStatus = "status"
)

// topicPrefix is the first two levels of every topic; "v1" versions the
// whole channel, payloads carry their own "v" as well.
const topicPrefix = "pos/v1/"

// Wildcard subscriptions for HQ: one subscription covers a whole fleet,
// which is how hqctl reaches 1,000 serials on one connection.
const (
	AckWildcard    = topicPrefix + "+/" + KindAck
	EvtWildcard    = topicPrefix + "+/" + KindEvt
	StatusWildcard = topicPrefix + "+/" + KindStatus
	CmdWildcard    = topicPrefix + "+/" + KindCmd
)

// DeviceKID is the kid of a terminal's own Ed25519 key, which signs its
// acks and events.
func DeviceKID(serial string) string { return "dev-" + serial }

// ClientID is the terminal's MQTT client id; a fixed id with
// CleanSession=false is what lets the broker queue commands while the
// terminal is offline.
func ClientID(serial string) string { return "pos-" + serial }

// CmdTopic is where HQ publishes commands for serial.
func CmdTopic(serial string) string { return topicPrefix + serial + "/" + KindCmd }

// AckTopic is where serial publishes its signed acks.
func AckTopic(serial string) string { return topicPrefix + serial + "/" + KindAck }

// EvtTopic is where serial publishes its signed events.
func EvtTopic(serial string) string { return topicPrefix + serial + "/" + KindEvt }

// StatusTopic is where serial publishes its retained status.
func StatusTopic(serial string) string { return topicPrefix + serial + "/" + KindStatus }

// ParseTopic splits pos/v1/<serial>/<kind>. ok is false for any other
// shape, a bad serial or an unknown kind.
func ParseTopic(topic string) (serial, kind string, ok bool) {
	rest, found := strings.CutPrefix(topic, topicPrefix)
	if !found {
		return "", "", false
	}
	serial, kind, found = strings.Cut(rest, "/")
	if !found || !ValidSerial(serial) {
		return "", "", false
	}
	switch kind {
	case KindCmd, KindAck, KindEvt, KindStatus:
		return serial, kind, true
	}
	return "", "", false
}

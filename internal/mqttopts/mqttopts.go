// Package mqttopts holds what hqd's and hqctl's MQTT connections share:
// the host part of a client id and the paho options every HQ connection
// starts from (their TLS files: internal/tlsfiles). It links no database
// (hqctl imports it).
package mqttopts

import (
	"crypto/tls"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Host is this machine's host name in the characters a client id keeps
// (letters, digits, '-'; anything else becomes '-').
func Host() string {
	host, _ := os.Hostname()
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, host)
}

// Options are the client options every HQ connection starts from: broker,
// client id, credentials, TLS (nil: none set), a 10 s connect timeout, a
// 30 s keep-alive, auto-reconnect at most 10 s apart, and the default
// publish handler, set before Connect (a paho v1.5 pitfall: messages
// arriving before Subscribe returns would otherwise be dropped).
func Options(broker, id, username, password string, tlsCfg *tls.Config, handler paho.MessageHandler) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(id).
		SetUsername(username).
		SetPassword(password).
		SetConnectTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(handler)
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	return o
}

package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/posagent/posagent/internal/mqttopts"
	"github.com/posagent/posagent/internal/tlsfiles"
)

// mqttFlags are the broker connection flags shared by every command that
// talks to the broker.
type mqttFlags struct {
	broker   string
	caFile   string
	certFile string
	keyFile  string
	username string
	password string
}

func (m *mqttFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.broker, "broker", "tcp://127.0.0.1:1883", "broker URL: tcp://HOST:PORT, or ssl://HOST:PORT for TLS")
	fs.StringVar(&m.caFile, "ca-file", "", "PEM CA bundle to verify the broker (default: system roots)")
	fs.StringVar(&m.certFile, "cert-file", "", "PEM client certificate for brokers that require one")
	fs.StringVar(&m.keyFile, "key-file", "", "PEM private key of --cert-file")
	fs.StringVar(&m.username, "username", "hq", "MQTT username (the broker ACL's fleet-wide HQ user)")
	fs.StringVar(&m.password, "password", "", "MQTT password (or $HQCTL_MQTT_PASSWORD)")
}

func (m *mqttFlags) tlsConfig() (*tls.Config, error) {
	return tlsfiles.Client(m.caFile, m.certFile, m.keyFile, tlsfiles.Names{CA: "--ca-file", Cert: "--cert-file", Key: "--key-file"})
}

var clientSeq atomic.Int64

// clientID is unique per run, hq-<host>-<pid>, so two operators (or two
// runs in one test binary, which get a -N suffix) never take over each
// other's connection.
func clientID() string {
	id := fmt.Sprintf("hq-%s-%d", mqttopts.Host(), os.Getpid())
	if n := clientSeq.Add(1); n > 1 {
		id += fmt.Sprintf("-%d", n)
	}
	return id
}

// connect opens one MQTT connection. HQ uses CleanSession=true: it
// subscribes before it publishes, so it needs no queue while away. The
// default publish handler is set before Connect (a paho v1.5 pitfall:
// messages arriving before Subscribe returns would otherwise be dropped).
// handler must not block: paho calls it on its single router goroutine.
func (m *mqttFlags) connect(handler paho.MessageHandler) (paho.Client, error) {
	o, err := m.options(clientID(), handler)
	if err != nil {
		return nil, err
	}
	c := paho.NewClient(o.SetCleanSession(true).SetConnectRetry(false))
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, fmt.Errorf("connect %s: timeout", m.broker)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s: %w", m.broker, err)
	}
	return c, nil
}

// options are the client options every HQ connection shares
// (mqttopts.Options) with the credentials of --password or
// $HQCTL_MQTT_PASSWORD and the TLS files of the flags.
func (m *mqttFlags) options(id string, handler paho.MessageHandler) (*paho.ClientOptions, error) {
	tlsCfg, err := m.tlsConfig()
	if err != nil {
		return nil, err
	}
	pass := m.password
	if pass == "" {
		pass = os.Getenv("HQCTL_MQTT_PASSWORD")
	}
	return mqttopts.Options(m.broker, id, m.username, pass, tlsCfg, handler), nil
}

// waitToken waits for a paho token until deadline.
func waitToken(tok paho.Token, deadline time.Time) error {
	if !tok.WaitTimeout(time.Until(deadline)) {
		return errors.New("timeout")
	}
	return tok.Error()
}

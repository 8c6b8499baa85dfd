// Package mqttopts holds what hqd's and hqctl's MQTT connections share:
// the host part of a client id, the TLS files (hqctl's connection to hqd's
// API takes its CA file the same way), and the paho options every HQ
// connection starts from. It links no database (hqctl imports it).
package mqttopts

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
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

// TLS is the client TLS config of files: the CA bundle (none: the
// system's roots) and the client certificate (none: no certificate); nil
// when no file is named.
func TLS(ca, cert, key string, names Names) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names.CA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificate", names.CA, ca)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("%s and %s go together", names.Cert, names.Key)
	}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names.Cert, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// Names are how messages call the TLS files: config keys or flags.
type Names struct{ CA, Cert, Key string }

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

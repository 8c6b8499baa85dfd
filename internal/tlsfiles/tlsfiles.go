// Package tlsfiles reads the TLS files a client names in its config or
// flags — a CA bundle, a client certificate and its key — into a
// tls.Config, with errors that name the key or flag to fix. posagentd
// (MQTT, update downloads), hqd and hqctl share it.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Client is the client TLS config of files: the CA bundle (none: the
// system's roots) and the client certificate (none: no certificate); nil
// when no file is named.
func Client(ca, cert, key string, names Names) (*tls.Config, error) {
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

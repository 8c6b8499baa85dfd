package mosquittotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1/localhost
// and client certificates made on demand, all ECDSA P-256.
type pki struct {
	dir        string
	ca         *x509.Certificate
	caKey      *ecdsa.PrivateKey
	caFile     string
	serverCert string
	serverKey  string

	mu      sync.Mutex
	clients map[string][2]string
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mosquittotest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &pki{dir: dir, ca: ca, caKey: key, caFile: filepath.Join(dir, "ca.crt"), clients: map[string][2]string{}}
	if err := writePEM(p.caFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	p.serverCert, p.serverKey, err = p.issue("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

var certNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (p *pki) client(name string) (certFile, keyFile string, err error) {
	if !certNameRE.MatchString(name) {
		return "", "", fmt.Errorf("client cert name %q: want [A-Za-z0-9._-]{1,64}", name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.clients[name]; ok {
		return f[0], f[1], nil
	}
	certFile, keyFile, err = p.issue("client-"+name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", "", err
	}
	p.clients[name] = [2]string{certFile, keyFile}
	return certFile, keyFile, nil
}

var serialMu sync.Mutex
var nextSerial int64 = 1

func (p *pki) issue(base string, tmpl *x509.Certificate) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serialMu.Lock()
	nextSerial++
	tmpl.SerialNumber = big.NewInt(nextSerial)
	serialMu.Unlock()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile = filepath.Join(p.dir, base+".crt")
	keyFile = filepath.Join(p.dir, base+".key")
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", kder, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// CAFile is the PEM file of the harness CA (the server's and every client
// certificate's issuer); "" without Options.TLS.
func (b *Broker) CAFile() string {
	if b.pki == nil {
		return ""
	}
	return b.pki.caFile
}

// ClientCert returns PEM files of a client certificate (CN = name) signed
// by the harness CA, made on first use. It needs Options.TLS.
func (b *Broker) ClientCert(name string) (certFile, keyFile string) {
	b.t.Helper()
	if b.pki == nil {
		b.t.Fatal("mosquittotest: ClientCert needs Options.TLS")
	}
	certFile, keyFile, err := b.pki.client(name)
	if err != nil {
		b.t.Fatalf("mosquittotest: %v", err)
	}
	return certFile, keyFile
}

// ClientTLSConfig is a TLS config that trusts the harness CA and, when name
// is not "", presents ClientCert(name).
func (b *Broker) ClientTLSConfig(name string) *tls.Config {
	b.t.Helper()
	if b.pki == nil {
		b.t.Fatal("mosquittotest: ClientTLSConfig needs Options.TLS")
	}
	pool := x509.NewCertPool()
	pool.AddCert(b.pki.ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if name != "" {
		certFile, keyFile := b.ClientCert(name)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			b.t.Fatalf("mosquittotest: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

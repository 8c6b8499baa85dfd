package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/hq/activation"
	"github.com/posagent/posagent/internal/hq/api"
	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/ingest"
	"github.com/posagent/posagent/internal/hq/jobs"
	"github.com/posagent/posagent/internal/hq/store"
	"github.com/posagent/posagent/internal/mqttopts"
	"github.com/posagent/posagent/internal/tlsfiles"
	"github.com/posagent/posagent/terminal/remote"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := configOnly("run", "hqd", args, stdout, stderr)
	if !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	if err := serve(ctx, cfg, stdout, newLogger(stderr, cfg.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "hqd: %v\n", err)
		return 1
	}
	return 0
}

// clientID is the configured MQTT client id or hqd-<hostname>: stable
// across restarts, so the broker keeps this instance's session (and the
// messages it was handed but had not acknowledged) while it restarts.
func clientID(cfg Config) string {
	if cfg.MQTT.ClientID != "" {
		return cfg.MQTT.ClientID
	}
	return "hqd-" + mqttopts.Host()
}

// mqttPublisher publishes commands at QoS 1 without waiting: a command is
// stored before it is published and re-published until its final ack, so a
// lost publish costs one re-send interval.
type mqttPublisher struct {
	c   paho.Client
	log *slog.Logger
}

func (p *mqttPublisher) Publish(topic string, payload []byte) {
	tok := p.c.Publish(topic, 1, false, payload)
	go func() {
		if tok.WaitTimeout(30*time.Second) && tok.Error() != nil {
			p.log.Warn("publish failed; the re-send loop publishes it again", "topic", topic, "err", tok.Error())
		}
	}()
}

// serve runs hqd until ctx ends.
func serve(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) error {
	id := clientID(cfg)
	log = log.With("instance", id)
	var signer *command.Signer
	if cfg.Signing.KeyFile != "" {
		s, err := command.LoadKey(cfg.Signing.KeyFile, cfg.Signing.KID)
		if err != nil {
			return fmt.Errorf("signing.key_file: %w", err)
		}
		signer = &s
	}
	// The database may not be up yet (a fleet's PostgreSQL restarting):
	// keep trying, the health check says so meanwhile.
	var st *store.Store
	for backoff := time.Second; ; backoff = min(backoff*2, 30*time.Second) {
		var err error
		if st, err = openStore(ctx, cfg, log); err == nil {
			break
		}
		log.Error("database not reachable; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	defer st.Close()

	tlsCfg, err := mqttTLS(cfg.MQTT)
	if err != nil {
		return err
	}
	password := ""
	if cfg.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(cfg.MQTT.PasswordFile)
		if err != nil {
			return fmt.Errorf("mqtt.password_file: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}

	var in *ingest.Ingester
	handler := func(_ paho.Client, m paho.Message) {
		in.Handle(ingest.Message{Topic: m.Topic(), Payload: m.Payload(), Ack: m.Ack})
	}
	share := "$share/" + cfg.MQTT.ShareGroup + "/"
	subs := map[string]byte{share + remote.AckWildcard: 1, share + remote.EvtWildcard: 1, share + remote.StatusWildcard: 1}
	var subscribed sync.Once
	o := mqttopts.Options(cfg.MQTT.Broker, id, cfg.MQTT.Username, password, tlsCfg, handler).
		SetCleanSession(false).
		// Manual acks: PUBACK only once the message is committed.
		SetAutoAckDisabled(true).
		SetOrderMatters(false).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.SubscribeMultiple(subs, handler)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				log.Error("subscribe failed; the next reconnection tries again", "err", tok.Error())
				return
			}
			log.Info("connected and subscribed", "broker", cfg.MQTT.Broker, "share_group", cfg.MQTT.ShareGroup)
			subscribed.Do(func() {
				fmt.Fprintf(stdout, "hqd %s: subscribed to %s{ack,evt,status} on %s\n", id, share+"pos/v1/+/", cfg.MQTT.Broker)
			})
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("broker connection lost; reconnecting", "err", err)
		})
	client := paho.NewClient(o)
	pub := &mqttPublisher{c: client, log: log}
	in = ingest.New(st, pub, log, ingest.Options{})
	var acqKeys activation.AcquirerKeys
	if cfg.Activation.AcquirerKeys != "" {
		acqKeys = activation.FileKeys{Path: cfg.Activation.AcquirerKeys}
	}
	if signer != nil {
		in.OnEvent(remote.EvtActivationRequest, &activation.Service{Signer: *signer, Acquirer: acqKeys, Rand: rand.Reader,
			ProvisionTTL: cfg.Activation.ProvisionTTL.Duration, MaxAge: cfg.Activation.MaxRequestAge.Duration,
			Resend: cfg.Jobs.ResendInterval.Duration, Log: log})
	} else {
		log.Warn("no signing.key_file: activation requests and hqd-signed jobs are not answered")
	}
	runner := &jobs.Runner{Store: st, Pub: pub, Signer: signer, Owner: id, Log: log, Tick: cfg.Jobs.Tick.Duration,
		Lease: cfg.Jobs.Lease.Duration, Resend: cfg.Jobs.ResendInterval.Duration}
	svc := &jobs.Service{Store: st, Signer: signer, Policy: cfg.Policy, Log: log}
	for typ, n := range cfg.Policy {
		if n > 1 {
			log.Info("policy: operators sign this type; hqd's key never does", "type", typ, "signatures", n)
		}
	}

	apiSrv := &api.Server{Store: st, Jobs: svc, Log: log,
		Health: map[string]api.Health{"ingest": in, "jobs": runner},
		Stats:  func() any { return in.Stats() }}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	httpHandler, err := withBackOffice(ctx, cfg, st, svc, log, apiSrv.Handler())
	if err != nil {
		ln.Close()
		return err
	}
	httpSrv := &http.Server{Handler: httpHandler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	scheme := "http"
	if cfg.HTTP.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.CertFile, cfg.HTTP.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http.cert_file: %w", err)
		}
		httpSrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, httpSrv.TLSConfig)
		scheme = "https"
	}
	fmt.Fprintf(stdout, "hqd %s: api on %s://%s\n", id, scheme, ln.Addr())
	log.Info("api listening", "addr", ln.Addr().String(), "scheme", scheme)

	var wg sync.WaitGroup
	work, cancelWork := context.WithCancel(context.Background())
	wg.Add(3)
	go func() { defer wg.Done(); in.Run(work) }()
	go func() { defer wg.Done(); runner.Run(work) }()
	go func() {
		defer wg.Done()
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api", "err", err)
		}
	}()
	client.Connect() // with ConnectRetry the token completes once connected

	<-ctx.Done()
	log.Info("stopping")
	// Stop taking messages first; what is queued but not committed is not
	// acknowledged, and the broker delivers it again after the restart.
	client.Disconnect(250)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = httpSrv.Shutdown(shut)
	cancel()
	cancelWork()
	wg.Wait()
	fmt.Fprintf(stdout, "hqd %s: stopped\n", id)
	return nil
}

// mqttTLS is the broker connection's TLS: the configured files, or on an
// ssl:// broker without them the system's roots (TLS 1.2 at least).
// LoadConfig has checked that cert_file and key_file go together.
func mqttTLS(m MQTTConfig) (*tls.Config, error) {
	if m.CAFile == "" && m.CertFile == "" && strings.HasPrefix(m.Broker, "ssl://") {
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	return tlsfiles.Client(m.CAFile, m.CertFile, m.KeyFile, tlsfiles.Names{CA: "mqtt.ca_file", Cert: "mqtt.cert_file", Key: "mqtt.key_file"})
}

// registryRecord is one line of posagentd factory-init's output.
type registryRecord struct {
	Serial     string `json:"serial"`
	Ed25519Pub []byte `json:"ed25519_pub"`
	X25519Pub  []byte `json:"x25519_pub"`
}

func parseRegistry(data []byte) ([]registryRecord, error) {
	var out []registryRecord
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var r registryRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil || !remote.ValidSerial(r.Serial) || len(r.Ed25519Pub) != 32 {
			return nil, fmt.Errorf("line %d: want factory-init's {\"serial\",\"ed25519_pub\",\"x25519_pub\"}", n+1)
		}
		out = append(out, r)
	}
	return out, nil
}

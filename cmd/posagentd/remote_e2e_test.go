package main

// End-to-end tests of the remote channel (spec/remote.md) against a real
// mosquitto: per-device ACL, TLS with client certificates, the check table
// one rejection at a time, offline delivery, a broker restart in the middle
// of an unbind, and the open-batch policies (settle, refuse, force).

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/internal/mosquittotest"
	"github.com/posagent/posagent/iso8583/hostsim"
	"github.com/posagent/posagent/terminal"
	"github.com/posagent/posagent/terminal/remote"
)

// unbindResult is the final ack's result of an unbind.
func unbindResult(t testing.TB, a hqAck) terminal.UnbindSummary {
	t.Helper()
	var s terminal.UnbindSummary
	if err := json.Unmarshal(a.Ack.Result, &s); err != nil {
		t.Fatalf("unbind result %s: %v", a.Ack.Result, err)
	}
	return s
}

// checkUnbound checks what a completed unbind leaves: exit status 3, no
// secret under data_dir, NOT ACTIVATED after the restart.
func checkUnbound(t *testing.T, r *rterm, host *remoteHost) {
	t.Helper()
	if code := r.waitExitCode(remoteWait); code != exitReboot {
		t.Fatalf("posagentd exit status %d after the unbind, want %d (reboot = \"exit\")", code, exitReboot)
	}
	assertWiped(t, r.DataDir, r.merchantSecrets(host))
	r.Start()
	r.WaitScreen("NOT ACTIVATED", remoteWait)
}

// intruder is a second terminal's MQTT identity trying to read and write
// another terminal's topics.
type intruder struct {
	c    paho.Client
	msgs chan paho.Message
}

func connectIntruder(t *testing.T, url, serial string, tc *tls.Config) *intruder {
	t.Helper()
	in := &intruder{msgs: make(chan paho.Message, 64)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(remote.ClientID(serial)).SetUsername(serial).
		SetCleanSession(true).SetTLSConfig(tc).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { in.msgs <- m })
	in.c = paho.NewClient(o)
	if tok := in.c.Connect(); !tok.WaitTimeout(remoteWait) || tok.Error() != nil {
		t.Fatalf("intruder connect: %v", tok.Error())
	}
	t.Cleanup(func() { in.c.Disconnect(100) })
	return in
}

// TestRemoteUnbindTLSAndACL: the terminal on the TLS listener with its
// client certificate, under the per-device ACL. Another terminal can
// neither read the victim's commands and acks nor inject a command (even
// one validly signed by HQ); HQ's unbind settles the batch, wipes, exits 3
// and the terminal comes back NOT ACTIVATED.
func TestRemoteUnbindTLSAndACL(t *testing.T) {
	t.Parallel()
	broker := brokerForTerms(t, mosquittotest.Options{TLS: true})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.TLSURL(), broker.ClientTLSConfig("hq"))
	const serial = "PA-TLS-0001"
	cert, key := broker.ClientCert(serial)
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000001", Broker: broker.TLSURL(),
		CAFile: broker.CAFile(), Cert: cert, Key: key})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })
	r.sell(12345)

	// The other terminal: its own certificate, its own username.
	const evil = "PA-EVIL-0002"
	in := connectIntruder(t, broker.TLSURL(), evil, broker.ClientTLSConfig(evil))
	for _, topic := range []string{remote.CmdTopic(serial), remote.AckTopic(serial), "pos/v1/+/cmd", "pos/v1/#"} {
		tok := in.c.Subscribe(topic, 1, nil)
		if !tok.WaitTimeout(remoteWait) {
			t.Fatalf("intruder subscribe %s: timeout", topic)
		}
		// mosquitto 2 answers a denied subscription with 0x80; a wildcard
		// is granted but filtered per message. Either way nothing of
		// the victim's may arrive (checked below).
		t.Logf("intruder subscribe %s: %v %v", topic, tok.Error(), tok.(*paho.SubscribeToken).Result())
	}
	// A command HQ really signed, replayed by the intruder into the
	// victim's command topic: the broker must drop it.
	injected := "status-injected-1"
	tok := in.c.Publish(remote.CmdTopic(serial), 1, false, hq.seal(hq.command(serial, remote.TypeStatus, injected, nil, time.Hour)))
	tok.WaitTimeout(remoteWait)

	id := hq.unbind(serial, remote.UnsettledSettle, 5*time.Minute)
	hq.waitAck(id, remote.AckAccepted, remoteWait)
	fin := hq.waitFinal(id, remoteWait)
	if fin.Ack.State != remote.AckSucceeded {
		t.Fatalf("final ack %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
	}
	res := unbindResult(t, fin)
	if !strings.HasPrefix(res.Settlement, "SETTLED") || !res.BindingRemoved || !res.KeysZeroised || res.TxnsRemoved != 1 {
		t.Errorf("unbind result %s: want a settled batch, binding removed, keys zeroised, 1 txn removed", fin.Ack.Result)
	}
	b := host.host.Ledger().Batch(r.TID, "000001")
	if b == nil || !b.Closed || b.Settlement == nil || b.Settlement.Terminal.DebitAmount != 12345 {
		t.Errorf("host batch 000001 %+v: want closed and settled for 123.45", b)
	}
	checkUnbound(t, r, host)
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "unactivated" })

	if got := hq.acksOf(injected); len(got) != 0 {
		t.Errorf("the injected command was executed: %d acks", len(got))
	}
	// Control: the intruder's subscriptions do work, on its own subtree.
	hq.publish(evil, []byte("own topic"))
	own := 0
	timeout := time.After(remoteWait)
	for own == 0 {
		select {
		case m := <-in.msgs:
			if m.Topic() == remote.CmdTopic(evil) {
				own++
				continue
			}
			t.Errorf("intruder %s received %s: %.80q", evil, m.Topic(), m.Payload())
		case <-timeout:
			t.Fatalf("the intruder never received a message on its own topic: the ACL check above proves nothing")
		}
	}
	for {
		select {
		case m := <-in.msgs:
			if m.Topic() != remote.CmdTopic(evil) {
				t.Errorf("intruder %s received %s: %.80q", evil, m.Topic(), m.Payload())
			}
			continue
		default:
		}
		break
	}
}

// TestRemoteRejections sends one bad command at a time; each leaves the
// terminal active with its journal (status batch_count, a sale after it)
// and gets the ack remote.md asks for, or none at all.
func TestRemoteRejections(t *testing.T) {
	t.Parallel()
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	const serial = "PA-REJ-0001"
	r := newRemoteTerm(t, host, hq, rtermOptions{Serial: serial, TID: "71000002", Broker: broker.URL()})
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })
	r.sell(1000)
	sales := 1

	now := time.Now().UTC().Truncate(time.Second)
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	payload := func(id, serial, typ string, issued, expires time.Time, args string) []byte {
		return []byte(fmt.Sprintf(`{"v":1,"id":%q,"type":%q,"serial":%q,"issued_at":%q,"expires_at":%q,"args":%s}`,
			id, typ, serial, rfc(issued), rfc(expires), args))
	}
	unbindArgs := `{"reason":"test","unsettled":"force"}`
	good := func(id string) []byte {
		return payload(id, serial, "unbind", now, now.Add(time.Hour), unbindArgs)
	}
	otherKey := newHQ(t) // a key the terminal does not know under kid hq-1

	// A status command executed first: its id is "seen" for the replay
	// cases below.
	done := "status-done-1"
	donePayload := payload(done, serial, "status", now, now.Add(time.Hour), `{}`)
	hq.publish(serial, hq.seal(donePayload))
	first := hq.waitFinal(done, remoteWait)
	if first.Ack.State != remote.AckSucceeded {
		t.Fatalf("status command: %s %s, want succeeded", first.Ack.State, first.Ack.Reason)
	}

	big := good("unbind-big")
	bigEnv := hq.seal(big)
	// Pad the envelope past 16 KiB with an extra member: still JSON, still
	// validly signed, refused unread.
	bigEnv = append(bigEnv[:len(bigEnv)-1], []byte(`,"pad":"`+strings.Repeat("A", remote.MaxEnvelope)+`"}`)...)

	type tc struct {
		name   string
		id     string // the ack's cmd_id
		env    []byte
		reason string // "" = no ack at all
	}
	badSig := func() []byte {
		e := hq.seal(good("unbind-badsig"))
		var env remote.Envelope
		json.Unmarshal(e, &env)
		env.Sig[0] ^= 1
		b, _ := json.Marshal(env)
		return b
	}()
	unknownKID := func() []byte {
		e, err := remote.Seal("hq-9", hq.priv, good("unbind-kid"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}()
	cases := []tc{
		{"bad signature", "unbind-badsig", badSig, ""},
		{"signed by another key", "unbind-otherkey", otherKey.seal(good("unbind-otherkey")), ""},
		{"unknown kid", "unbind-kid", unknownKID, ""},
		{"envelope not JSON", "", []byte(`{"kid":"hq-1","payload":`), ""},
		{"oversize envelope", "unbind-big", bigEnv, ""},
		{"malformed JSON payload", "", hq.seal([]byte(`{"v":1,"id":"unbind-x","type":"unbind",`)), remote.ReasonInvalid},
		{"unknown key", "unbind-unknownkey", hq.seal([]byte(fmt.Sprintf(`{"v":1,"id":"unbind-unknownkey","type":"unbind","serial":%q,"issued_at":%q,"expires_at":%q,"force":true}`,
			serial, rfc(now), rfc(now.Add(time.Hour))))), remote.ReasonInvalid},
		{"v 2", "unbind-v2", hq.seal([]byte(strings.Replace(string(good("unbind-v2")), `"v":1`, `"v":2`, 1))), remote.ReasonInvalid},
		{"wrong serial", "unbind-ws", hq.seal(payload("unbind-ws", "PA-OTHER-9", "unbind", now, now.Add(time.Hour), unbindArgs)), remote.ReasonWrongSerial},
		{"expired", "unbind-exp", hq.seal(payload("unbind-exp", serial, "unbind", now.Add(-2*time.Hour), now.Add(-time.Hour), unbindArgs)), remote.ReasonExpired},
		{"issued in the future", "unbind-fut", hq.seal(payload("unbind-fut", serial, "unbind", now.Add(6*time.Minute), now.Add(time.Hour), unbindArgs)), remote.ReasonNotYetValid},
		{"unknown type", "reboot-1", hq.seal(payload("reboot-1", serial, "reboot", now, now.Add(time.Hour), `{}`)), remote.ReasonInvalid},
		{"bad unbind args", "unbind-args", hq.seal(payload("unbind-args", serial, "unbind", now, now.Add(time.Hour), `{"unsettled":"burn"}`)), remote.ReasonInvalid},
		{"provision while active", "prov-1", hq.seal(payload("prov-1", serial, "provision", now, now.Add(time.Hour),
			`{"tid":"71000009","mid":"898000071000009","merchant_name":"X","acquirer":{"addr":"127.0.0.1:1","tls":false,"tpdu":"6000030000"},"tmk_sealed":"AAAA","tmk_kcv":"ABCDEF","activation":"act-1"}`)), remote.ReasonWrongState},
		{"replayed id, different payload", done, hq.seal(good(done)), remote.ReasonReplayed},
		{"ten-year window", "unbind-10y", hq.seal(payload("unbind-10y", serial, "unbind", now, now.AddDate(10, 0, 0), unbindArgs)), remote.ReasonInvalid},
		{"duplicate key, readable id", "unbind-dup", hq.seal([]byte(fmt.Sprintf(`{"v":1,"id":"unbind-dup","type":"unbind","serial":%q,"issued_at":%q,"expires_at":%q,"args":{},"args":{"unsettled":"force"}}`,
			serial, rfc(now), rfc(now.Add(time.Hour))))), remote.ReasonInvalid},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			hq.t = t
			before := len(hq.acksFrom(serial))
			dropped := strings.Count(r.lastLog(), "command dropped unverified")
			hq.publish(serial, c.env)
			if c.reason == "" {
				// paho runs handlers concurrently (OrderMatters=false): wait
				// for the terminal's log line, not for a later command.
				deadline := time.Now().Add(remoteWait)
				for strings.Count(r.lastLog(), "command dropped unverified") == dropped {
					if time.Now().After(deadline) {
						t.Fatalf("the terminal never dropped the envelope; log:\n%s", tail(r.lastLog(), 2000))
					}
					time.Sleep(10 * time.Millisecond)
				}
			} else {
				hq.waitFor("rejection of "+c.name, remoteWait, func() bool {
					return slices.ContainsFunc(hq.acksFrom(serial)[before:], func(a hqAck) bool { return a.Ack.Final() && a.Ack.CmdID == c.id })
				})
			}
			// A status command re-publishes the status: the journal is intact.
			probe := fmt.Sprintf("probe-%d", time.Now().UnixNano())
			hq.publish(serial, hq.seal(hq.command(serial, remote.TypeStatus, probe, nil, time.Hour)))
			hq.waitFinal(probe, remoteWait)
			hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.State == "active" && s.BatchCount == sales })
			var mine []hqAck
			for _, a := range hq.acksFrom(serial)[before:] {
				if a.Ack.CmdID != probe {
					mine = append(mine, a)
				}
			}
			switch {
			case c.reason == "" && len(mine) != 0:
				t.Errorf("got %d acks (%s %s), want none", len(mine), mine[0].Ack.State, mine[0].Ack.Reason)
			case c.reason != "" && len(mine) != 1:
				t.Errorf("got %d acks, want exactly one rejected %s: %+v", len(mine), c.reason, mine)
			case c.reason != "":
				a := mine[0]
				if a.Ack.State != remote.AckRejected || a.Ack.Reason != c.reason || a.Ack.CmdID != c.id || !a.Verified {
					t.Errorf("ack %+v verified=%v, want rejected %s for cmd_id %q", a.Ack, a.Verified, c.reason, c.id)
				}
			}
			r.sell(int64(100 * (sales + 1)))
			sales++
		})
	}
	hq.t = t

	// A rejected id is recorded with its rejection: the same bytes again
	// get the stored ack, byte for byte, and a corrected command needs a
	// new id (its old one is replayed).
	exp := hq.acksOf("unbind-exp")
	if len(exp) != 1 {
		t.Fatalf("unbind-exp acks %d, want 1", len(exp))
	}
	hq.publish(serial, hq.seal(payload("unbind-exp", serial, "unbind", now.Add(-2*time.Hour), now.Add(-time.Hour), unbindArgs)))
	hq.waitFor("the re-sent rejection", remoteWait, func() bool { return len(hq.acksOf("unbind-exp")) == 2 })
	if again := hq.acksOf("unbind-exp")[1]; string(again.Raw) != string(exp[0].Raw) {
		t.Errorf("rejected command sent again: %s %s, want the stored rejection's bytes", again.Ack.State, again.Ack.Reason)
	}
	hq.publish(serial, hq.seal(good("unbind-exp")))
	hq.waitFor("the corrected command's answer", remoteWait, func() bool { return len(hq.acksOf("unbind-exp")) == 3 })
	if a := hq.acksOf("unbind-exp")[2]; a.Ack.State != remote.AckRejected || a.Ack.Reason != remote.ReasonReplayed {
		t.Errorf("corrected command under the rejected id: %s %s, want rejected replayed", a.Ack.State, a.Ack.Reason)
	}

	// The seen id with the very same payload: the stored final ack's
	// bytes again, nothing else.
	hq.publish(serial, hq.seal(donePayload))
	hq.waitFor("the re-sent final ack", remoteWait, func() bool { return len(hq.acksOf(done)) >= 3 })
	acks := hq.acksOf(done)
	for _, a := range acks[1:] {
		if a.Ack.State == remote.AckRejected {
			continue // the replayed-with-another-payload case above
		}
		if string(a.Raw) != string(first.Raw) {
			t.Errorf("re-sent final ack differs from the stored one:\n got %s\nwant %s", a.Raw, first.Raw)
		}
	}
	if n := slices.IndexFunc(acks[1:], func(a hqAck) bool { return string(a.Raw) == string(first.Raw) }); n < 0 {
		t.Errorf("no re-sent final ack among %d acks", len(acks))
	}

	// The same bytes once the command has expired: still the stored final
	// ack, not "expired".
	expires := time.Now().UTC().Add(2 * time.Second).Truncate(time.Second)
	shortPayload := payload("status-short", serial, "status", now, expires, `{}`)
	hq.publish(serial, hq.seal(shortPayload))
	short := hq.waitFinal("status-short", remoteWait)
	time.Sleep(time.Until(expires.Add(1100 * time.Millisecond))) // past expires_at
	hq.publish(serial, hq.seal(shortPayload))
	hq.waitFor("the re-sent ack of an expired command", remoteWait, func() bool { return len(hq.acksOf("status-short")) >= 2 })
	if again := hq.acksOf("status-short")[1]; string(again.Raw) != string(short.Raw) {
		t.Errorf("expired command re-sent: got %s %s, want the stored final ack bytes", again.Ack.State, again.Ack.Reason)
	}

	// Still active, still selling, journal intact.
	r.sell(700)
	sales++
	probe := "status-last"
	hq.publish(serial, hq.seal(hq.command(serial, remote.TypeStatus, probe, nil, time.Hour)))
	hq.waitFinal(probe, remoteWait)
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.State == "active" && s.BatchCount == sales })
	if hb := host.host.Ledger().Batch(r.TID, "000001"); hb == nil || len(hb.Transactions) != sales || hb.Settlement != nil {
		t.Errorf("host batch 000001: %+v, want %d unsettled sales", hb, sales)
	}
}

// remoteSetup is one broker (with the ACL), one host, HQ and one active
// terminal with one sale in its batch.
func remoteSetup(t *testing.T, serial, tid string, o rtermOptions) (*mosquittotest.Broker, *remoteHost, *hqSide, *rterm) {
	t.Helper()
	broker := brokerForTerms(t, mosquittotest.Options{})
	host := startRemoteHost(t)
	hq := newHQ(t)
	hq.connect(broker.URL(), nil)
	o.Serial, o.TID, o.Broker = serial, tid, broker.URL()
	r := newRemoteTerm(t, host, hq, o)
	hq.waitStatus(serial, remoteWait, func(s remote.Status) bool { return s.Online && s.State == "active" })
	r.sell(12345)
	return broker, host, hq, r
}

// countStates counts the acks of a command by state.
func countStates(acks []hqAck) map[string]int {
	m := map[string]int{}
	for _, a := range acks {
		m[a.Ack.State]++
	}
	return m
}

// TestRemoteOfflineDelivery: the unbind is published while the terminal
// is stopped; the broker queues it for the persistent session and the
// terminal executes it once when it comes back.
func TestRemoteOfflineDelivery(t *testing.T) {
	t.Parallel()
	_, host, hq, r := remoteSetup(t, "PA-OFF-0001", "71000003", rtermOptions{})
	r.Stop()
	hq.waitStatus(r.Serial, remoteWait, func(s remote.Status) bool { return !s.Online })
	id := hq.unbind(r.Serial, remote.UnsettledSettle, 10*time.Minute)
	time.Sleep(300 * time.Millisecond)
	if n := len(hq.acksOf(id)); n != 0 {
		t.Fatalf("%d acks while the terminal is off", n)
	}
	r.Start()
	fin := hq.waitFinal(id, remoteWait)
	if fin.Ack.State != remote.AckSucceeded {
		t.Fatalf("final ack %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
	}
	checkUnbound(t, r, host)
	time.Sleep(500 * time.Millisecond) // a duplicate delivery would show by now
	if c := countStates(hq.acksOf(id)); c[remote.AckAccepted] != 1 || c[remote.AckSucceeded] != 1 || len(c) != 2 {
		t.Errorf("acks of %s: %v, want one accepted and one succeeded (executed once)", id, c)
	}
	if ht := host.host.Ledger().Terminals[r.TID]; ht == nil || len(ht.Batches) == 0 || ht.Batches[0].Settlement == nil || !ht.Batches[0].Closed {
		t.Errorf("host: batch not settled and closed: %+v", ht)
	}
}

// TestRemoteBrokerRestartMidUnbind: mosquitto goes away right after the
// accepted ack while the host answers the settlement slowly. "restart":
// it comes back at once, the unbind completes and the final ack arrives.
// "down": it stays away until the daemon has finished and exited 3, so
// the final ack waits in the durable outbox and is delivered by the
// unactivated terminal after its reboot.
func TestRemoteBrokerRestartMidUnbind(t *testing.T) {
	t.Parallel()
	for i, mode := range []string{"restart", "down"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			broker, host, hq, r := remoteSetup(t, fmt.Sprintf("PA-BRK-%04d", i), fmt.Sprintf("7100004%d", i), rtermOptions{Timeout: "10s"})
			host.host.SetFaults(hostsim.Faults{Delay: 3 * time.Second, On: []string{"0500"}, Count: 1})
			id := hq.unbind(r.Serial, remote.UnsettledSettle, 10*time.Minute)
			hq.waitAck(id, remote.AckAccepted, remoteWait)
			if mode == "restart" {
				broker.Restart()
			} else {
				broker.Stop()
				if code := r.waitExitCode(remoteWait); code != exitReboot {
					t.Fatalf("exit status %d, want %d", code, exitReboot)
				}
				if n := len(hq.acksOf(id)); n != 1 {
					t.Fatalf("%d acks with the broker down, want only the accepted one", n)
				}
				broker.Restart()
				r.Start()
				r.WaitScreen("NOT ACTIVATED", remoteWait)
			}
			fin := hq.waitFinal(id, 2*remoteWait)
			if fin.Ack.State != remote.AckSucceeded {
				t.Fatalf("final ack %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
			}
			if res := unbindResult(t, fin); !strings.HasPrefix(res.Settlement, "SETTLED") {
				t.Errorf("settlement %q, want SETTLED", res.Settlement)
			}
			if mode == "restart" {
				checkUnbound(t, r, host)
			} else {
				r.Stop()
				assertWiped(t, r.DataDir, r.merchantSecrets(host))
			}
			if c := countStates(hq.acksOf(id)); c[remote.AckSucceeded] < 1 || c[remote.AckFailed]+c[remote.AckRejected] != 0 {
				t.Errorf("acks of %s: %v", id, c)
			}
			if b := host.host.Ledger().Batch(r.TID, "000001"); b == nil || !b.Closed {
				t.Errorf("host batch 000001 not closed: %+v", b)
			}
		})
	}
}

// TestRemoteUnsettled covers the open-batch policies that do not settle
// (refuse, force) and a settlement that cannot reach the host before the
// command expires.
func TestRemoteUnsettled(t *testing.T) {
	t.Parallel()
	t.Run("refuse", func(t *testing.T) {
		t.Parallel()
		_, host, hq, r := remoteSetup(t, "PA-REF-0001", "71000005", rtermOptions{})
		id := hq.unbind(r.Serial, remote.UnsettledRefuse, 10*time.Minute)
		fin := hq.waitFinal(id, remoteWait)
		if fin.Ack.State != remote.AckFailed || fin.Ack.Reason != remote.ReasonUnsettledBatch {
			t.Fatalf("final ack %s %s, want failed unsettled-batch", fin.Ack.State, fin.Ack.Reason)
		}
		checkStillActive(t, r, hq, host, 1)
	})
	t.Run("force", func(t *testing.T) {
		t.Parallel()
		_, host, hq, r := remoteSetup(t, "PA-FRC-0001", "71000006", rtermOptions{})
		s := r.Sale(5000, track2B)
		if !strings.Contains(s, "APPROVED") {
			t.Fatalf("sale: %q", s)
		}
		r.Keys("\r")
		r.WaitScreen("MAIN MENU", remoteWait)
		id := hq.unbind(r.Serial, remote.UnsettledForce, 10*time.Minute)
		fin := hq.waitFinal(id, remoteWait)
		if fin.Ack.State != remote.AckSucceeded {
			t.Fatalf("final ack %s %s, want succeeded", fin.Ack.State, fin.Ack.Reason)
		}
		res := unbindResult(t, fin)
		want := []terminal.UnsettledTxn{
			{STAN: "000002", Type: "sale", Amount: 12345, PAN: "622202*********0123"},
			{STAN: "000003", Type: "sale", Amount: 5000, PAN: "476173******0119"},
		}
		if res.Settlement != "forced" || len(res.Unsettled) != len(want) {
			t.Fatalf("result %s: want forced with %d unsettled entries", fin.Ack.Result, len(want))
		}
		for i, w := range want {
			g := res.Unsettled[i]
			if _, err := time.Parse(time.RFC3339, g.Time); err != nil {
				t.Errorf("unsettled[%d].time %q: %v", i, g.Time, err)
			}
			g.Time = ""
			if g != w {
				t.Errorf("unsettled[%d] = %+v, want %+v", i, g, w)
			}
		}
		for _, p := range testPANs {
			if strings.Contains(string(fin.Raw), p) || strings.Contains(string(fin.Ack.Result), p) {
				t.Errorf("clear PAN in the final ack")
			}
		}
		checkUnbound(t, r, host)
		if b := host.host.Ledger().Batch(r.TID, "000001"); b == nil || b.Settlement != nil {
			t.Errorf("host batch 000001 %+v: force must not settle", b)
		}
	})
	t.Run("host_unreachable", func(t *testing.T) {
		t.Parallel()
		_, host, hq, r := remoteSetup(t, "PA-UNR-0001", "71000007", rtermOptions{})
		host.host.Close() // the acquirer is gone
		t0 := time.Now()
		id := hq.unbind(r.Serial, remote.UnsettledSettle, 20*time.Second)
		hq.waitAck(id, remote.AckAccepted, remoteWait)
		fin := hq.waitFinal(id, 45*time.Second)
		if fin.Ack.State != remote.AckFailed || fin.Ack.Reason != remote.ReasonSettlementFailed {
			t.Fatalf("final ack %s %s, want failed settlement-failed", fin.Ack.State, fin.Ack.Reason)
		}
		if d := time.Since(t0); d < 15*time.Second {
			t.Errorf("gave up after %v, before expires_at (20 s)", d)
		}
		if !r.running() {
			t.Fatalf("the daemon exited (%d)", r.exitSt)
		}
		r.WaitScreen("MAIN MENU", remoteWait)
		probe := "status-after-fail"
		hq.publish(r.Serial, hq.seal(hq.command(r.Serial, remote.TypeStatus, probe, nil, time.Hour)))
		hq.waitFinal(probe, remoteWait)
		hq.waitStatus(r.Serial, remoteWait, func(s remote.Status) bool { return s.State == "active" && s.BatchCount == 1 && s.TID == r.TID })
	})
}

// checkStillActive: the daemon runs, shows MAIN MENU, reports its batch
// of n transactions, and sells.
func checkStillActive(t *testing.T, r *rterm, hq *hqSide, host *remoteHost, n int) {
	t.Helper()
	if !r.running() {
		t.Fatalf("the daemon exited (%d)", r.exitSt)
	}
	probe := fmt.Sprintf("status-%d", time.Now().UnixNano())
	hq.publish(r.Serial, hq.seal(hq.command(r.Serial, remote.TypeStatus, probe, nil, time.Hour)))
	hq.waitFinal(probe, remoteWait)
	hq.waitStatus(r.Serial, remoteWait, func(s remote.Status) bool { return s.State == "active" && s.BatchCount == n })
	r.sell(4321)
	if b := host.host.Ledger().Batch(r.TID, "000001"); b == nil || len(b.Transactions) != n+1 || b.Settlement != nil {
		t.Errorf("host batch 000001 %+v: want %d unsettled sales", b, n+1)
	}
}

package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/terminal/remote"
)

// Exit statuses of the commands that send and wait (unbind, send).
const (
	exitOK      = 0 // every serial reached succeeded
	exitFailed  = 1 // some serial's final ack was failed or rejected, an unverified ack arrived, or a broker error
	exitUsage   = 2
	exitTimeout = 3 // --wait ran out before every serial had a final ack
)

// job is one signed command for one serial.
type job struct {
	serial   string
	cmdID    string // the ack's cmd_id to wait for
	envelope []byte
}

type dispatchOpts struct {
	mqtt       *mqttFlags
	wait       time.Duration
	json       bool
	deviceKeys map[string]ed25519.PublicKey // serial -> device key; an ack counts only when it verifies
	stdout     io.Writer
	stderr     io.Writer
	name       string // command name for messages
}

type jobState struct {
	job
	shown      map[string]bool // state+verified already printed (acks arrive at least once)
	final      string
	unverified int // acks for this command that did not verify: never counted
}

// tracker follows the acks of a run. Its handle method runs on paho's
// router goroutine and must not block: it only decodes, verifies, prints
// and counts, under one mutex.
type tracker struct {
	o       dispatchOpts
	width   int
	mu      sync.Mutex
	jobs    map[string]*jobState
	pending int
	done    chan struct{}
	closed  bool
}

func newTracker(jobs []job, o dispatchOpts) *tracker {
	t := &tracker{o: o, jobs: make(map[string]*jobState, len(jobs)), done: make(chan struct{})}
	for _, j := range jobs {
		t.jobs[j.serial] = &jobState{job: j, shown: map[string]bool{}}
		t.width = max(t.width, len(j.serial))
	}
	t.pending = len(t.jobs)
	if t.pending == 0 {
		close(t.done)
	}
	return t
}

func (t *tracker) handle(_ paho.Client, m paho.Message) {
	serial, kind, ok := remote.ParseTopic(m.Topic())
	if !ok || kind != remote.KindAck {
		return
	}
	raw := m.Payload()
	t.mu.Lock()
	defer t.mu.Unlock()
	js := t.jobs[serial]
	if js == nil || t.closed {
		return
	}
	env, err := remote.Decode(raw)
	if err != nil {
		fmt.Fprintf(t.o.stderr, "hqctl %s: %s: ack is not an envelope: %v\n", t.o.name, serial, err)
		return
	}
	// Only the terminal's own device key makes an ack true: the broker
	// lets anyone with this terminal's credentials publish on its topic.
	pub := t.o.deviceKeys[serial]
	_, verr := remote.Open(raw, map[string]ed25519.PublicKey{remote.DeviceKID(serial): pub})
	verified := pub != nil && verr == nil
	ack, err := remote.ParseAck(env.Payload)
	if err != nil {
		fmt.Fprintf(t.o.stderr, "hqctl %s: %s: %v\n", t.o.name, serial, err)
		return
	}
	if ack.CmdID != js.cmdID {
		return // an ack of some other command to this terminal
	}
	if ack.Serial != serial {
		verified = false // a terminal answering for another serial is not to be trusted
	}
	if !verified {
		js.unverified++
	}
	key := fmt.Sprintf("%s/%v", ack.State, verified)
	if js.shown[key] {
		return
	}
	js.shown[key] = true
	if t.o.json {
		t.printJSON(env.Payload, verified)
	} else {
		t.printHuman(serial, ack, verified)
	}
	if verified && ack.Final() && js.final == "" {
		js.final = ack.State
		t.pending--
		if t.pending == 0 {
			close(t.done)
		}
	}
}

func (t *tracker) printJSON(payload []byte, verified bool) {
	var b bytes.Buffer
	if err := json.Compact(&b, payload); err != nil {
		return
	}
	line := b.Bytes()
	if len(line) > 2 && line[len(line)-1] == '}' {
		line = append(line[:len(line)-1], fmt.Sprintf(`,"verified":%v}`, verified)...)
	}
	fmt.Fprintf(t.o.stdout, "%s\n", line)
}

func (t *tracker) printHuman(serial string, a remote.Ack, verified bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s  %s", t.width, serial, a.State)
	if a.Reason != "" {
		b.WriteString("  reason=" + a.Reason)
	}
	if pairs := resultPairs(a.Result); len(pairs) > 0 {
		b.WriteString("  " + strings.Join(pairs, " "))
	}
	if !verified {
		b.WriteString("  UNVERIFIED")
	}
	fmt.Fprintln(t.o.stdout, b.String())
}

// resultPairs renders a result object as key=value in the order the
// terminal wrote it; strings bare, anything else as compact JSON.
func resultPairs(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			out = append(out, k+"="+s)
			continue
		}
		var c bytes.Buffer
		_ = json.Compact(&c, v)
		out = append(out, k+"="+c.String())
	}
	return out
}

// dispatch subscribes to every serial's ack topic (one wildcard
// subscription, so a run of 1,000 serials costs one SUBSCRIBE), then
// publishes each command at QoS 1, not retained, and waits until every
// serial has a final ack or o.wait runs out.
func dispatch(jobs []job, o dispatchOpts) int {
	start := time.Now()
	deadline := start.Add(o.wait)
	tr := newTracker(jobs, o)
	c, err := o.mqtt.connect(tr.handle)
	if err != nil {
		fmt.Fprintf(o.stderr, "hqctl %s: %v\n", o.name, err)
		return exitFailed
	}
	defer c.Disconnect(250)
	if err := waitToken(c.Subscribe(remote.AckWildcard, 1, tr.handle), deadline); err != nil {
		fmt.Fprintf(o.stderr, "hqctl %s: subscribe %s: %v\n", o.name, remote.AckWildcard, err)
		return exitFailed
	}
	toks := make([]paho.Token, len(jobs))
	for i, j := range jobs {
		toks[i] = c.Publish(remote.CmdTopic(j.serial), 1, false, j.envelope)
	}
	for i, tok := range toks {
		if err := waitToken(tok, deadline); err != nil {
			fmt.Fprintf(o.stderr, "hqctl %s: publish to %s: %v\n", o.name, jobs[i].serial, err)
			tr.abort()
			return exitFailed
		}
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-tr.done:
	case <-timer.C:
	}
	return tr.finish(time.Since(start))
}

func (t *tracker) abort() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// finish stops printing, writes the summary to stderr and picks the exit
// status: a failed or rejected serial wins over a timeout, since it needs an
// operator's attention whatever the silent ones do.
func (t *tracker) finish(took time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	counts := map[string]int{}
	var missing, forged []string
	unverified := 0
	for s, js := range t.jobs {
		if js.unverified > 0 {
			unverified += js.unverified
			forged = append(forged, s)
		}
		if js.final == "" {
			missing = append(missing, s)
			continue
		}
		counts[js.final]++
	}
	sort.Strings(missing)
	sort.Strings(forged)
	fmt.Fprintf(t.o.stderr, "hqctl %s: %d serials: %d succeeded, %d failed, %d rejected, %d without a final ack (%s)\n",
		t.o.name, len(t.jobs), counts[remote.AckSucceeded], counts[remote.AckFailed], counts[remote.AckRejected],
		len(missing), took.Round(time.Millisecond))
	if len(missing) > 0 {
		fmt.Fprintf(t.o.stderr, "hqctl %s: no final ack from: %s\n", t.o.name, strings.Join(missing, " "))
	}
	if unverified > 0 {
		fmt.Fprintf(t.o.stderr, "hqctl %s: %d UNVERIFIED acks ignored (not signed by the terminal's device key; someone else publishes on its topics): %s\n",
			t.o.name, unverified, strings.Join(forged, " "))
	}
	switch {
	case counts[remote.AckFailed]+counts[remote.AckRejected] > 0 || unverified > 0:
		return exitFailed
	case len(missing) > 0:
		return exitTimeout
	}
	return exitOK
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/terminal/remote"
)

// cmdStatus collects the retained status of every terminal for --wait and
// prints a table (or JSON lines) sorted by serial.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "--broker URL [--json] [--wait 2s]",
		"Collect the terminals' retained status for --wait and print a table (or JSON\nlines) sorted by serial.")
	var mf mqttFlags
	mf.register(fs)
	wait := fs.Duration("wait", 2*time.Second, "how long to collect statuses")
	jsonOut := fs.Bool("json", false, "print each status payload as one JSON line")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	if fs.NArg() > 0 || *wait <= 0 {
		fmt.Fprintln(stderr, "hqctl status: takes flags only, with a positive --wait")
		return exitUsage
	}
	var mu sync.Mutex
	statuses := map[string]remote.Status{}
	raws := map[string][]byte{}
	handle := func(_ paho.Client, m paho.Message) {
		serial, kind, ok := remote.ParseTopic(m.Topic())
		if !ok || kind != remote.KindStatus || len(m.Payload()) == 0 {
			return // an empty retained payload is a deleted status
		}
		st, err := remote.ParseStatus(m.Payload())
		if err != nil || st.Serial != serial {
			return
		}
		var c bytes.Buffer
		if json.Compact(&c, m.Payload()) != nil {
			return
		}
		mu.Lock()
		statuses[serial], raws[serial] = st, c.Bytes()
		mu.Unlock()
	}
	deadline := time.Now().Add(*wait)
	c, err := mf.connect(handle)
	if err != nil {
		fmt.Fprintf(stderr, "hqctl status: %v\n", err)
		return exitFailed
	}
	defer c.Disconnect(250)
	if err := waitToken(c.Subscribe(remote.StatusWildcard, 1, handle), deadline.Add(10*time.Second)); err != nil {
		fmt.Fprintf(stderr, "hqctl status: subscribe: %v\n", err)
		return exitFailed
	}
	time.Sleep(time.Until(deadline))
	mu.Lock()
	defer mu.Unlock()
	serials := make([]string, 0, len(statuses))
	for s := range statuses {
		serials = append(serials, s)
	}
	sort.Strings(serials)
	if *jsonOut {
		for _, s := range serials {
			fmt.Fprintf(stdout, "%s\n", raws[s])
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tSTATE\tONLINE\tTID\tBATCH\tCOUNT\tVERSION\tAT")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, s := range serials {
		st := statuses[s]
		at := "-"
		if !st.At.IsZero() {
			at = st.At.Format(time.RFC3339)
		}
		count := "-"
		if st.State != "" {
			count = strconv.Itoa(st.BatchCount)
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\n", s, dash(st.State), st.Online, dash(st.TID),
			dash(st.BatchNo), count, dash(st.Version), at)
	}
	if err := tw.Flush(); err != nil {
		return exitFailed
	}
	return exitOK
}

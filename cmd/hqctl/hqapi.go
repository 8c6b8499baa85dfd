package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/posagent/posagent/internal/hq/command"
	"github.com/posagent/posagent/internal/hq/wire"
	"github.com/posagent/posagent/internal/tlsfiles"
)

// The commands over hqd's HTTP JSON API: hqctl job, fleet, code, audit.
// They find hqd with --hq (or $HQCTL_HQ) and authenticate with an operator
// token from --token-file (or $HQCTL_TOKEN), made by
// `hqd operator add --token-out`.

const apiUsage = `hqctl job create --type unbind|status|hq_keys|update (--serial S … | --serials-file F | --search TEXT | --state S)
                 [--args JSON | --url U --sha256 H --size N --version V [--when idle|after-settlement]] [--rate 60] [--max-inflight 50] [--abort-pct 10] [--abort-min 20] [--ttl 24h] [--note T] [--watch] [--json]
  hqctl job show ID [--watch] [--json] | job list [--json] | job items ID [--state S] [--json]
  hqctl job cancel ID | job resume ID [--abort-pct N] | job sign ID --key DIR/KID.key
  hqctl fleet summary [--json] | fleet list [--state S] [--online true|false] [--search T] [--limit N] [--json]
  hqctl fleet show SERIAL [--json] | fleet state SERIAL
  hqctl code issue --serial S --tid T --mid M --acquirer HOST:PORT [--merchant-name N] [--tpdu T] [--acquirer-tls] [--ttl 24h] [--json]
  hqctl code list [--serial S] [--json]
  hqctl audit [--actor A] [--action PREFIX] [--target T] [--limit 100] [--json]
    API flags: --hq URL (default $HQCTL_HQ or http://127.0.0.1:8440), --token-file F (or $HQCTL_TOKEN), --ca-file F
`

// apiFlags are the flags of every API command.
type apiFlags struct {
	hq, tokenFile, caFile string
	json                  bool
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("HQCTL_HQ")
	if def == "" {
		def = "http://127.0.0.1:8440"
	}
	fs.StringVar(&a.hq, "hq", def, "hqd's API `URL`")
	fs.StringVar(&a.tokenFile, "token-file", "", "operator token `file` (default $HQCTL_TOKEN)")
	fs.StringVar(&a.caFile, "ca-file", "", "PEM CA to verify hqd's TLS certificate")
	fs.BoolVar(&a.json, "json", false, "print JSON for scripts")
}

type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is an error answer of hqd.
type apiError struct {
	Status  int
	Problem struct {
		Error   string   `json:"error"`
		Field   string   `json:"field"`
		Unknown []string `json:"unknown"`
	}
}

func (e *apiError) Error() string {
	s := e.Problem.Error
	if e.Problem.Field != "" {
		s = e.Problem.Field + ": " + s
	}
	if n := len(e.Problem.Unknown); n > 0 {
		show := e.Problem.Unknown[:min(n, 20)]
		s += " (" + strings.Join(show, ", ")
		if n > len(show) {
			s += fmt.Sprintf(", … %d more", n-len(show))
		}
		s += ")"
	}
	return fmt.Sprintf("hqd: %s (HTTP %d)", s, e.Status)
}

func (a *apiFlags) client() (*apiClient, error) {
	token := os.Getenv("HQCTL_TOKEN")
	if a.tokenFile != "" {
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, errors.New("an operator token is needed: --token-file FILE or $HQCTL_TOKEN (hqd operator add --token-out makes one)")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.caFile != "" {
		tc, err := tlsfiles.Client(a.caFile, "", "", tlsfiles.Names{CA: "--ca-file"})
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return &apiClient{base: strings.TrimRight(a.hq, "/"), token: token, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}, nil
}

func (c *apiClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("hqd: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("hqd: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Problem) != nil || e.Problem.Error == "" {
			e.Problem.Error = strings.TrimSpace(string(data))
		}
		return e
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = data
			return nil
		}
		return json.Unmarshal(data, out)
	}
	return nil
}

// apiCmd parses an API subcommand's flags (--help exits 0) and makes the client.
func apiCmd(name string, args []string, stdout, stderr io.Writer, def func(fs *flag.FlagSet)) (*flag.FlagSet, *apiFlags, *apiClient, int, bool) {
	fs := flag.NewFlagSet("hqctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af apiFlags
	af.register(fs)
	if def != nil {
		def(fs)
	}
	if err := parseInterspersed(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage of hqctl %s:\n", name)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return fs, &af, nil, exitOK, false
		}
		return fs, &af, nil, exitUsage, false
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "hqctl %s: %v\n", name, err)
		return fs, &af, nil, exitUsage, false
	}
	return fs, &af, c, 0, true
}

// parseInterspersed parses flags that may follow positional arguments
// (hqctl job show ID --watch).
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// list GETs path into out and prints it: as JSON with --json, else as a
// table under header, its tab-separated rows written by rows.
func (c *apiClient) list(af *apiFlags, name, path string, out any, stdout, stderr io.Writer, header string, rows func(tw io.Writer)) int {
	if err := c.do("GET", path, nil, out); err != nil {
		return fail(stderr, name, err)
	}
	if af.json {
		printJSON(stdout, out)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	tw.Flush()
	return exitOK
}

func printJSON(w io.Writer, v any) {
	if raw, ok := v.(json.RawMessage); ok {
		w.Write(bytes.TrimSpace(raw))
		fmt.Fprintln(w)
		return
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}

func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "hqctl %s: %v\n", name, err)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return exitUsage
	}
	return exitFailed
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// apiSubcommand splits "GROUP SUB ARGS…" of an API command: the
// subcommand, its name for messages ("GROUP SUB") and its arguments; ok
// is false when only help was asked for (printed on stdout).
func apiSubcommand(group string, args []string, stdout io.Writer) (sub, name string, rest []string, ok bool) {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stdout, "Usage:\n  "+apiUsage)
		return "", "", nil, false
	}
	return args[0], group + " " + args[0], args[1:], true
}

// cmdJob: hqctl job create|show|list|items|cancel|resume|sign.
func cmdJob(args []string, stdout, stderr io.Writer) int {
	sub, name, args, ok := apiSubcommand("job", args, stdout)
	if !ok {
		return exitOK
	}
	switch sub {
	case "create":
		var req wire.JobRequest
		var serials stringList
		var serialsFile, argsJSON, search, state string
		var watch bool
		var upd updateFlags
		fs, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			upd.register(fs)
			fs.StringVar(&req.Type, "type", "unbind", "command type: unbind, status, hq_keys or update")
			fs.Var(&serials, "serial", "a terminal serial (repeatable)")
			fs.StringVar(&serialsFile, "serials-file", "", "`file` of serials, one a line")
			fs.StringVar(&search, "search", "", "every terminal whose serial, TID or MID starts with (or merchant contains) TEXT")
			fs.StringVar(&state, "state", "", "every terminal in this state (with --search: both)")
			fs.StringVar(&argsJSON, "args", "", `command args JSON, e.g. {"reason":"closed","unsettled":"settle"}`)
			fs.IntVar(&req.RatePerMin, "rate", wire.DefaultRate, "commands sent per minute")
			fs.IntVar(&req.MaxInflight, "max-inflight", wire.DefaultInflight, "terminals at once between send and final ack (settling)")
			fs.IntVar(&req.AbortPct, "abort-pct", wire.DefaultAbortPct, "stop sending when more than this % of finished terminals failed (100: never)")
			fs.IntVar(&req.AbortMin, "abort-min", wire.DefaultAbortMin, "... once at least this many finished")
			fs.StringVar(&req.CommandTTL, "ttl", "", "command validity (default 24h, at most 168h)")
			fs.StringVar(&req.Note, "note", "", "why (kept with the job)")
			fs.BoolVar(&watch, "watch", false, "follow the progress until the job ends")
		})
		if !ok {
			return code
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "hqctl %s: unexpected argument %q\n", name, fs.Arg(0))
			return exitUsage
		}
		req.Serials = serials
		if serialsFile != "" {
			list, err := readSerials(serialsFile)
			if err != nil {
				return fail(stderr, name, err)
			}
			req.Serials = append(req.Serials, list...)
		}
		if search != "" || state != "" {
			req.Filter = &wire.Filter{Search: search, State: state}
		}
		if argsJSON != "" {
			req.Args = json.RawMessage(argsJSON)
		}
		if err := upd.apply(&req); err != nil {
			fmt.Fprintf(stderr, "hqctl %s: %v\n", name, err)
			return exitUsage
		}
		var j wire.Job
		if err := c.do("POST", "/api/v1/jobs", req, &j); err != nil {
			return fail(stderr, name, err)
		}
		if !watch {
			if af.json {
				printJSON(stdout, j)
			} else {
				fmt.Fprintf(stdout, "job %s created: %s of %d terminals, %s (%s)\n", j.ID, j.Type, j.Total, j.State, signingNote(j))
			}
			return exitOK
		}
		return watchJob(c, j.ID, af.json, stdout, stderr)
	case "show":
		var watch bool
		fs, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&watch, "watch", false, "follow the progress until the job ends")
		})
		if !ok {
			return code
		}
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "hqctl %s: want one job id\n", name)
			return exitUsage
		}
		if watch {
			return watchJob(c, fs.Arg(0), af.json, stdout, stderr)
		}
		var p wire.Progress
		if err := c.do("GET", "/api/v1/jobs/"+url.PathEscape(fs.Arg(0)), nil, &p); err != nil {
			return fail(stderr, name, err)
		}
		if af.json {
			printJSON(stdout, p)
		} else {
			printProgress(stdout, p)
		}
		return exitOK
	case "list":
		_, af, c, code, ok := apiCmd(name, args, stdout, stderr, nil)
		if !ok {
			return code
		}
		var out struct {
			Jobs []wire.Progress `json:"jobs"`
		}
		return c.list(af, name, "/api/v1/jobs", &out, stdout, stderr,
			"ID\tTYPE\tSTATE\tDONE\tFAILED\tTOTAL\tBY\tCREATED", func(tw io.Writer) {
				for _, p := range out.Jobs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.Job.ID, p.Job.Type, p.Job.State, p.Done, p.Failed, p.Job.Total,
						p.Job.CreatedBy, p.Job.CreatedAt.Format(time.RFC3339))
				}
			})
	case "items":
		var state string
		fs, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&state, "state", "", "only items in this state (failed, rejected, no_answer, …)")
		})
		if !ok {
			return code
		}
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "hqctl %s: want one job id\n", name)
			return exitUsage
		}
		var out struct {
			Items []wire.Item `json:"items"`
		}
		return c.list(af, name, "/api/v1/jobs/"+url.PathEscape(fs.Arg(0))+"/items?limit=10000&state="+url.QueryEscape(state), &out, stdout, stderr,
			"SERIAL\tSTATE\tREASON\tCOMMAND\tUPDATED\tRESULT", func(tw io.Writer) {
				for _, it := range out.Items {
					// The result is what the terminal signed: the keys and policy
					// an hq_keys left in force, an unbind's proof of wipe.
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Serial, it.State, it.Reason, it.CmdID, it.UpdatedAt.Format(time.RFC3339),
						strings.Join(resultPairs(it.Result), " "))
				}
			})
	case "cancel", "resume":
		var abortPct int
		fs, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			if sub == "resume" {
				fs.IntVar(&abortPct, "abort-pct", 0, "a new abort threshold (default: keep)")
			}
		})
		if !ok {
			return code
		}
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "hqctl %s: want one job id\n", name)
			return exitUsage
		}
		var body any
		if sub == "resume" {
			body = map[string]int{"abort_pct": abortPct}
		}
		var j wire.Job
		if err := c.do("POST", "/api/v1/jobs/"+url.PathEscape(fs.Arg(0))+"/"+sub, body, &j); err != nil {
			return fail(stderr, name, err)
		}
		if af.json {
			printJSON(stdout, j)
		} else {
			fmt.Fprintf(stdout, "job %s %s\n", j.ID, j.State)
		}
		return exitOK
	case "sign":
		var keyPath, kid string
		fs, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&keyPath, "key", "", "your signing key, DIR/KID.key from hqctl keygen (required; it never leaves this machine)")
			fs.StringVar(&kid, "kid", "", "key id (default: the key file name without .key)")
		})
		if !ok {
			return code
		}
		if fs.NArg() != 1 || keyPath == "" {
			fmt.Fprintf(stderr, "hqctl %s: want one job id and --key\n", name)
			return exitUsage
		}
		signer, err := command.LoadKey(keyPath, kid)
		if err != nil {
			return fail(stderr, name, err)
		}
		id := url.PathEscape(fs.Arg(0))
		var un struct {
			Commands []struct {
				CmdID   string `json:"cmd_id"`
				Serial  string `json:"serial"`
				Payload []byte `json:"payload"`
			} `json:"commands"`
		}
		if err := c.do("GET", "/api/v1/jobs/"+id+"/unsigned", nil, &un); err != nil {
			return fail(stderr, name, err)
		}
		var sigs []wire.SignatureIn
		for _, cmd := range un.Commands {
			// What is signed is what a terminal will check: refuse a
			// payload that is not the command it claims to be.
			var p struct {
				ID     string `json:"id"`
				Serial string `json:"serial"`
			}
			if json.Unmarshal(cmd.Payload, &p) != nil || p.ID != cmd.CmdID || p.Serial != cmd.Serial {
				return fail(stderr, name, fmt.Errorf("command %s: the payload does not match its id and serial; not signing", cmd.CmdID))
			}
			sigs = append(sigs, wire.SignatureIn{CmdID: cmd.CmdID, KID: signer.KID, Sig: ed25519.Sign(signer.Priv, cmd.Payload)})
		}
		var j wire.Job
		for start := 0; start < len(sigs); start += 1000 {
			if err := c.do("POST", "/api/v1/jobs/"+id+"/signatures", map[string]any{"signatures": sigs[start:min(start+1000, len(sigs))]}, &j); err != nil {
				return fail(stderr, name, err)
			}
		}
		if af.json {
			printJSON(stdout, j)
		} else {
			fmt.Fprintf(stdout, "signed %d commands of job %s as %s; job %s\n", len(sigs), fs.Arg(0), signer.KID, j.State)
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "hqctl job: unknown subcommand %q\n\nUsage:\n  %s", sub, apiUsage)
	return exitUsage
}

func signingNote(j wire.Job) string {
	if j.Signing == wire.SignOperators {
		return fmt.Sprintf("waits for %d operator signature(s) per command: hqctl job sign %s --key …", j.RequiredSigs, j.ID)
	}
	return fmt.Sprintf("signed by hqd, %d/min, at most %d in flight", j.RatePerMin, j.MaxInflight)
}

func printProgress(w io.Writer, p wire.Progress) {
	fmt.Fprintln(w, p.Line())
	keys := []string{wire.ItemPending, wire.ItemSent, wire.ItemAccepted, wire.ItemInProgress, wire.ItemSucceeded,
		wire.ItemFailed, wire.ItemRejected, wire.ItemNoAnswer, wire.ItemCancelled}
	var parts []string
	for _, k := range keys {
		if n := p.Counts[k]; n > 0 {
			parts = append(parts, k+" "+strconv.Itoa(n))
		}
	}
	fmt.Fprintf(w, "  sent %d: %s\n", p.Sent, strings.Join(parts, ", "))
	if p.Job.Note != "" {
		fmt.Fprintf(w, "  %s\n", p.Job.Note)
	}
}

// watchJob follows a job: one line rewritten in place on a TTY, a line per
// change otherwise, JSON lines with --json. Exit 0 done with no failure,
// 1 failures, aborted or cancelled.
func watchJob(c *apiClient, id string, asJSON bool, stdout, stderr io.Writer) int {
	tty := isTTY(stdout) && !asJSON
	last := ""
	for {
		var p wire.Progress
		if err := c.do("GET", "/api/v1/jobs/"+url.PathEscape(id), nil, &p); err != nil {
			return fail(stderr, "job show", err)
		}
		line := p.Line()
		switch {
		case asJSON && line != last:
			b, _ := json.Marshal(p)
			fmt.Fprintf(stdout, "%s\n", b)
		case tty:
			fmt.Fprintf(stdout, "\r\033[K%s", line)
		case line != last:
			fmt.Fprintln(stdout, line)
		}
		last = line
		switch p.Job.State {
		case wire.JobDone, wire.JobAborted, wire.JobCancelled, wire.JobRejected:
			if tty {
				fmt.Fprintln(stdout)
			}
			if p.Job.Note != "" && !asJSON {
				fmt.Fprintln(stdout, p.Job.Note)
			}
			if p.Job.State == wire.JobDone && p.Failed == 0 {
				return exitOK
			}
			return exitFailed
		}
		time.Sleep(time.Second)
	}
}

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/posagent/posagent/internal/hq/wire"
)

// cmdFleet: hqctl fleet summary|list|show|state over hqd's API.
func cmdFleet(args []string, stdout, stderr io.Writer) int {
	sub, name, args, ok := apiSubcommand("fleet", args, stdout)
	if !ok {
		return exitOK
	}
	switch sub {
	case "summary":
		_, af, c, code, ok := apiCmd(name, args, stdout, stderr, nil)
		if !ok {
			return code
		}
		var raw json.RawMessage
		if err := c.do("GET", "/api/v1/fleet", nil, &raw); err != nil {
			return fail(stderr, name, err)
		}
		if af.json {
			printJSON(stdout, raw)
			return exitOK
		}
		var s struct {
			Terminals int            `json:"terminals"`
			ByState   map[string]int `json:"by_state"`
			Rejected  map[string]int `json:"rejected_messages"`
		}
		_ = json.Unmarshal(raw, &s)
		fmt.Fprintf(stdout, "%d terminals\n", s.Terminals)
		for k, v := range s.ByState {
			fmt.Fprintf(stdout, "  %-12s %d\n", k, v)
		}
		if len(s.Rejected) > 0 {
			fmt.Fprintln(stdout, "refused messages (not taken as truth):")
			for k, v := range s.Rejected {
				fmt.Fprintf(stdout, "  %-16s %d\n", k, v)
			}
		}
		return exitOK
	case "list":
		var state, online, search string
		var limit int
		_, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&state, "state", "", "unknown, unactivated, provisioned, active, unbinding, tampered")
			fs.StringVar(&online, "online", "", "true or false")
			fs.StringVar(&search, "search", "", "serial, TID or MID prefix, or part of the merchant name")
			fs.IntVar(&limit, "limit", 100, "at most this many (pages of up to 1000; 0: all)")
		})
		if !ok {
			return code
		}
		q := url.Values{"state": {state}, "online": {online}, "search": {search}}
		var all []wire.Terminal
		after := ""
		for {
			page := 1000
			if limit > 0 {
				page = min(1000, limit-len(all))
			}
			q.Set("limit", strconv.Itoa(page))
			q.Set("after", after)
			var out struct {
				Terminals []wire.Terminal `json:"terminals"`
				Next      string          `json:"next"`
			}
			if err := c.do("GET", "/api/v1/terminals?"+q.Encode(), nil, &out); err != nil {
				return fail(stderr, name, err)
			}
			all = append(all, out.Terminals...)
			if out.Next == "" || (limit > 0 && len(all) >= limit) {
				break
			}
			after = out.Next
		}
		if af.json {
			printJSON(stdout, map[string]any{"terminals": all})
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIAL\tSTATE\tONLINE\tTID\tBATCH\tCLOCK\tVERSION\tLAST SEEN")
		for _, t := range all {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%s\t%s\t%s\n", t.Serial, t.State, t.Online, t.TID, t.BatchCount, t.Clock, t.Version, seen(t.LastSeen))
		}
		tw.Flush()
		return exitOK
	case "show", "state":
		fs, af, c, code, ok := apiCmd(name, args, stdout, stderr, nil)
		if !ok {
			return code
		}
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "hqctl %s: want one serial\n", name)
			return exitUsage
		}
		var raw json.RawMessage
		if err := c.do("GET", "/api/v1/terminals/"+url.PathEscape(fs.Arg(0)), nil, &raw); err != nil {
			return fail(stderr, name, err)
		}
		var out struct {
			Terminal wire.Terminal  `json:"terminal"`
			Commands []wire.Command `json:"commands"`
		}
		_ = json.Unmarshal(raw, &out)
		if sub == "state" {
			fmt.Fprintln(stdout, out.Terminal.State)
			return exitOK
		}
		if af.json {
			printJSON(stdout, raw)
			return exitOK
		}
		t := out.Terminal
		fmt.Fprintf(stdout, "%s  %s  online=%v  TID %s  MID %s  batch %s (%d)  clock %s  version %s  last seen %s\n",
			t.Serial, t.State, t.Online, t.TID, t.MID, t.BatchNo, t.BatchCount, t.Clock, t.Version, seen(t.LastSeen))
		for _, c := range out.Commands {
			fmt.Fprintf(stdout, "  %s %s %s %s\n", c.CreatedAt.Format(time.RFC3339), c.Type, c.ID, c.State+reasonSuffix(c.Reason))
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "hqctl fleet: unknown subcommand %q\n", sub)
	return exitUsage
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func seen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}

// cmdCode: hqctl code issue|list.
func cmdCode(args []string, stdout, stderr io.Writer) int {
	sub, name, args, ok := apiSubcommand("code", args, stdout)
	if !ok {
		return exitOK
	}
	switch sub {
	case "issue":
		var req struct {
			Serial       string `json:"serial"`
			TID          string `json:"tid"`
			MID          string `json:"mid"`
			MerchantName string `json:"merchant_name"`
			Acquirer     string `json:"acquirer"`
			TPDU         string `json:"tpdu"`
			TLS          bool   `json:"tls"`
			TTL          string `json:"ttl,omitempty"`
		}
		_, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&req.Serial, "serial", "", "terminal serial (required)")
			fs.StringVar(&req.TID, "tid", "", "terminal id, 8 characters (required)")
			fs.StringVar(&req.MID, "mid", "", "merchant id, 15 characters (required)")
			fs.StringVar(&req.MerchantName, "merchant-name", "", "merchant name, at most 40 characters")
			fs.StringVar(&req.Acquirer, "acquirer", "", "acquirer host HOST:PORT (required)")
			fs.StringVar(&req.TPDU, "tpdu", "6000030000", "TPDU, 10 hex digits")
			fs.BoolVar(&req.TLS, "acquirer-tls", false, "the terminal reaches the acquirer over TLS")
			fs.StringVar(&req.TTL, "ttl", "", "how long the code may be used (default 24h)")
		})
		if !ok {
			return code
		}
		var out wire.Code
		if err := c.do("POST", "/api/v1/codes", req, &out); err != nil {
			return fail(stderr, name, err)
		}
		if af.json {
			b, _ := json.Marshal(map[string]any{"code": out.Code, "serial": out.Serial, "tid": out.TID, "mid": out.MID, "expires_at": out.ExpiresAt})
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintf(stdout, "activation code %s for %s (TID %s, MID %s), valid until %s\n", out.Code, out.Serial, out.TID, out.MID, out.ExpiresAt.Format(time.RFC3339))
		}
		return exitOK
	case "list":
		var serial string
		_, af, c, code, ok := apiCmd(name, args, stdout, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&serial, "serial", "", "only this terminal's codes")
		})
		if !ok {
			return code
		}
		var out struct {
			Codes []wire.Code `json:"codes"`
		}
		return c.list(af, name, "/api/v1/codes?serial="+url.QueryEscape(serial), &out, stdout, stderr,
			"CODE\tSERIAL\tTID\tSTATUS\tISSUED BY\tEXPIRES\tUSED BY REQUEST", func(tw io.Writer) {
				for _, c := range out.Codes {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Code, c.Serial, c.TID, c.Status, c.IssuedBy, c.ExpiresAt.Format(time.RFC3339), c.ActivationID)
				}
			})
	}
	fmt.Fprintf(stderr, "hqctl code: unknown subcommand %q\n", sub)
	return exitUsage
}

// cmdAudit: hqctl audit.
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	var actor, action, target string
	var limit int
	_, af, c, code, ok := apiCmd("audit", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&actor, "actor", "", "only this operator (hqd: the service itself)")
		fs.StringVar(&action, "action", "", "action prefix: job., code.issue, activation., key. …")
		fs.StringVar(&target, "target", "", "only this serial, job id or kid")
		fs.IntVar(&limit, "limit", 100, "newest this many")
	})
	if !ok {
		return code
	}
	q := url.Values{"actor": {actor}, "action": {action}, "target": {target}, "limit": {strconv.Itoa(limit)}}
	var out struct {
		Entries []wire.AuditEntry `json:"entries"`
	}
	return c.list(af, "audit", "/api/v1/audit?"+q.Encode(), &out, stdout, stderr,
		"WHEN\tWHO\tFROM\tACTION\tTARGET\tDETAIL", func(tw io.Writer) {
			for _, e := range out.Entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Source, e.Action, e.Target, e.Detail)
			}
		})
}

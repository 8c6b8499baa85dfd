// Command hqd is the HQ service of a posagent fleet (spec/remote.md): it
// keeps terminals, activation codes, commands, jobs, operators and the
// audit trail in a database (SQLite embedded, PostgreSQL for fleets),
// ingests what terminals publish through MQTT shared subscriptions,
// answers activation requests, rolls jobs out at a controlled rate and
// serves the HTTP JSON API that hqctl speaks. Several instances run side by
// side on one broker and one PostgreSQL.
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/posagent/posagent/internal/hq/api"
	"github.com/posagent/posagent/internal/hq/auth"
	"github.com/posagent/posagent/internal/hq/store"
)

var version = "dev"

const usage = `hqd — the HQ service of a posagent fleet

Usage:
  hqd [run] --config FILE          run the service (exit 0 after SIGTERM/SIGINT, 1 on a fatal error, 2 bad usage/config)
  hqd check-config --config FILE   validate the config and print the effective one
  hqd migrate --config FILE        bring the database schema up to date and exit (run also does it)
  hqd register --config FILE REGISTRY.jsonl [--replace]
                                   register terminals from posagentd factory-init's JSON lines
  hqd operator add --config FILE --name NAME --roles ROLE[,ROLE…] [--token-out FILE] [--password-file FILE]
                                   create an operator (roles: admin, requester, approver, technician, viewer)
                                   and, with --token-out, an API token for hqctl (written 0600, valid 1 year)
  hqd key add --config FILE --kid KID --pub BASE64 --role root|ops [--operator NAME]
                                   record an HQ public key (an operator's, hqd's own, an offline root key)
  hqd version

Config (TOML; every key optional, unknown keys refused):
  db = "sqlite:///var/lib/hqd/hq.db"   or "postgres://user@host/db?sslmode=verify-full"
  log_level = "info"
  [mqtt]      broker, client_id (default hqd-<hostname>: stable, the broker keeps its session),
              share_group ("hqd"), username ("hq"), password_file, ca_file, cert_file, key_file
  [http]      listen ("127.0.0.1:8440"), cert_file, key_file (TLS; plain HTTP only on loopback)
  [signing]   key_file (hqd's ops key, hqctl keygen's KID.key), kid: signs provision and every
              command type whose policy needs one signature; never used for a type that needs two
  [activation] acquirer_keys (acquirer-sim keys file), provision_ttl ("10m"), max_request_age ("10m")
  [jobs]      tick ("200ms"), lease ("15s"), resend_interval ("1m")
  [policy]    unbind = 2 …   distinct signatures a command type needs (as terminals were told)

Endpoints: GET /healthz (503 while the database or ingest fails), /api/v1/… (see README),
and every other path: the back office for operators in a browser (log in at /).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	if strings.HasPrefix(cmd, "-") {
		cmd = "run"
	} else {
		args = args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "migrate":
		return cmdMigrate(args, stdout, stderr)
	case "register":
		return cmdRegister(args, stdout, stderr)
	case "operator":
		if len(args) > 0 && args[0] == "add" {
			return cmdOperatorAdd(args[1:], stdout, stderr)
		}
	case "key":
		if len(args) > 0 && args[0] == "add" {
			return cmdKeyAdd(args[1:], stdout, stderr)
		}
	case "version", "--version":
		fmt.Fprintf(stdout, "hqd %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hqd: unknown command %q\n\n%s", strings.Join(append([]string{cmd}, args...), " "), usage)
	return 2
}

// flags parses a subcommand's flags; --help prints them and exits 0.
func flags(name string, args []string, stdout, stderr io.Writer, def func(fs *flag.FlagSet)) (*flag.FlagSet, string, int, bool) {
	fs := flag.NewFlagSet("hqd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "/etc/hqd/hqd.toml", "config `file`")
	if def != nil {
		def(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return fs, "", 0, false
		}
		return fs, "", 2, false
	}
	return fs, *cfg, 0, true
}

func loadConfig(path string, stderr io.Writer) (Config, bool) {
	cfg, err := LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "hqd: %v\n", err)
		return cfg, false
	}
	return cfg, true
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// configOnly parses the flags of a subcommand that takes --config and no
// argument (prefix starts its complaint about one) and loads the config;
// when ok is false the command exits with code.
func configOnly(name, prefix string, args []string, stdout, stderr io.Writer) (cfg Config, code int, ok bool) {
	fs, path, code, ok := flags(name, args, stdout, stderr, nil)
	if !ok {
		return Config{}, code, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", prefix, fs.Arg(0))
		return Config{}, 2, false
	}
	if cfg, ok = loadConfig(path, stderr); !ok {
		return Config{}, 2, false
	}
	return cfg, 0, true
}

func openStore(ctx context.Context, cfg Config, log *slog.Logger) (*store.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return store.Open(ctx, cfg.DB, log)
}

// withStore runs fn, a one-shot subcommand (hqd name), on the database of
// cfg: 0, or 1 with the failure on stderr.
func withStore(name string, cfg Config, stderr io.Writer, fn func(ctx context.Context, st *store.Store) error) int {
	ctx := context.Background()
	st, err := openStore(ctx, cfg, newLogger(stderr, cfg.LogLevel))
	if err != nil {
		fmt.Fprintf(stderr, "hqd %s: %v\n", name, err)
		return 1
	}
	defer st.Close()
	if err := fn(ctx, st); err != nil {
		fmt.Fprintf(stderr, "hqd %s: %v\n", name, err)
		return 1
	}
	return 0
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := configOnly("check-config", "hqd check-config", args, stdout, stderr)
	if !ok {
		return code
	}
	fmt.Fprintf(stdout, "%+v\n", cfg)
	return 0
}

func cmdMigrate(args []string, stdout, stderr io.Writer) int {
	_, path, code, ok := flags("migrate", args, stdout, stderr, nil)
	if !ok {
		return code
	}
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return 2
	}
	if code := withStore("migrate", cfg, stderr, func(context.Context, *store.Store) error { return nil }); code != 0 {
		return code
	}
	fmt.Fprintln(stdout, "schema up to date")
	return 0
}

func cmdRegister(args []string, stdout, stderr io.Writer) int {
	var replace *bool
	fs, path, code, ok := flags("register", args, stdout, stderr, func(fs *flag.FlagSet) {
		replace = fs.Bool("replace", false, "accept new keys for a serial registered before (a re-initialised unit)")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "hqd register: want one REGISTRY.jsonl (posagentd factory-init's output)")
		return 2
	}
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return 2
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "hqd register: %v\n", err)
		return 1
	}
	return withStore("register", cfg, stderr, func(ctx context.Context, st *store.Store) error {
		recs, err := parseRegistry(data)
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(0), err)
		}
		created := 0
		now := time.Now().UTC()
		for _, r := range recs {
			c, err := st.RegisterDevice(ctx, r.Serial, r.Ed25519Pub, r.X25519Pub, *replace, now)
			if err != nil {
				return err
			}
			if c {
				created++
			}
		}
		_ = st.Audit(ctx, store.AuditEntry{At: now, Actor: "hqd", Source: "cli", Action: "terminal.register",
			Detail: fmt.Sprintf(`{"lines":%d,"created":%d}`, len(recs), created)})
		fmt.Fprintf(stdout, "registered %d terminals (%d new)\n", len(recs), created)
		return nil
	})
}

func cmdOperatorAdd(args []string, stdout, stderr io.Writer) int {
	var name, roles, tokenOut, pwFile *string
	fs, path, code, ok := flags("operator add", args, stdout, stderr, func(fs *flag.FlagSet) {
		name = fs.String("name", "", "operator name (required)")
		roles = fs.String("roles", "", "comma-separated roles: admin, requester, approver, technician, viewer (required)")
		tokenOut = fs.String("token-out", "", "write a new API token for hqctl to this `file` (0600)")
		pwFile = fs.String("password-file", "", "back-office password, first line of this `file` (hashed with argon2id)")
	})
	if !ok {
		return code
	}
	if fs.NArg() > 0 || *name == "" || *roles == "" {
		fmt.Fprintln(stderr, "hqd operator add: --name and --roles are required")
		return 2
	}
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return 2
	}
	return withStore("operator add", cfg, stderr, func(ctx context.Context, st *store.Store) error {
		now := time.Now().UTC()
		o := store.Operator{Name: *name, Roles: strings.Split(*roles, ","), CreatedAt: now}
		if *pwFile != "" {
			pw, err := os.ReadFile(*pwFile)
			if err != nil {
				return err
			}
			if o.PasswordHash, err = auth.HashPassword(strings.TrimRight(strings.SplitN(string(pw), "\n", 2)[0], "\r")); err != nil {
				return err
			}
		}
		o, err := st.CreateOperator(ctx, o)
		if err != nil {
			return err
		}
		_ = st.Audit(ctx, store.AuditEntry{At: now, Actor: "hqd", Source: "cli", Action: "operator.add", Target: o.Name, Detail: `{"roles":"` + *roles + `"}`})
		if *tokenOut != "" {
			tok := api.NewToken()
			if err := st.CreateToken(ctx, o.ID, tok, "cli", now, now.Add(365*24*time.Hour)); err != nil {
				return err
			}
			if err := os.WriteFile(*tokenOut, []byte(tok+"\n"), 0o600); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "operator %s (%s) created\n", o.Name, strings.Join(o.Roles, ","))
		return nil
	})
}

func cmdKeyAdd(args []string, stdout, stderr io.Writer) int {
	var kid, pub, role, opName *string
	fs, path, code, ok := flags("key add", args, stdout, stderr, func(fs *flag.FlagSet) {
		kid = fs.String("kid", "", "key id (required)")
		pub = fs.String("pub", "", "base64 Ed25519 public key, hqctl keygen's KID.pub (required)")
		role = fs.String("role", "ops", "root or ops")
		opName = fs.String("operator", "", "the operator who holds the private key (empty: hqd's own or an offline key)")
	})
	if !ok {
		return code
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(*pub))
	if fs.NArg() > 0 || *kid == "" || err != nil || len(raw) != ed25519.PublicKeySize {
		fmt.Fprintln(stderr, "hqd key add: --kid and --pub (base64 32 bytes) are required")
		return 2
	}
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return 2
	}
	return withStore("key add", cfg, stderr, func(ctx context.Context, st *store.Store) error {
		k := store.HQKey{KID: *kid, Pub: raw, Role: *role, CreatedAt: time.Now().UTC()}
		if *opName != "" {
			o, err := st.OperatorByName(ctx, *opName)
			if err != nil {
				return fmt.Errorf("operator %s: %w", *opName, err)
			}
			k.OperatorID = o.ID
		}
		if err := st.AddKey(ctx, k); err != nil {
			return err
		}
		_ = st.Audit(ctx, store.AuditEntry{At: k.CreatedAt, Actor: "hqd", Source: "cli", Action: "key.add", Target: k.KID, Detail: `{"role":"` + k.Role + `"}`})
		fmt.Fprintf(stdout, "key %s (%s) recorded\n", k.KID, k.Role)
		return nil
	})
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

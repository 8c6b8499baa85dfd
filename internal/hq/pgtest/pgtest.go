// Package pgtest runs a throwaway PostgreSQL cluster for tests: initdb into
// a temporary directory, postgres on a free loopback port, trust
// authentication, stopped (and the directory removed) when the test binary
// ends. PostgreSQL refuses to run as root, so as root the cluster belongs to
// an unprivileged user (nobody) and every server program runs under
// setpriv; as any other user it runs as that user.
//
// One cluster serves a test binary; each test gets its own database from
// NewDB, so tests can run in parallel.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// binDirs are where Debian puts the server programs, newest first.
var binDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// Cluster is a running throwaway PostgreSQL.
type Cluster struct {
	dir  string
	port int
	bin  string
	uid  int // -1: the current user
	gid  int
	user string
	seq  atomic.Int64
}

var (
	once    sync.Once
	shared  *Cluster
	started error
)

// Main runs a test binary's tests and stops the shared cluster after them.
// Use it from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

// Shared returns the test binary's cluster, starting it on first use. A
// missing PostgreSQL is a test failure that says how to install it.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	once.Do(func() { shared, started = start() })
	if started != nil {
		tb.Fatalf("pgtest: %v", started)
	}
	return shared
}

// NewDB creates an empty database in the shared cluster and returns its
// URL (postgres://…).
func NewDB(tb testing.TB) string {
	tb.Helper()
	c := Shared(tb)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.seq.Add(1))
	db, err := sql.Open("pgx", c.URL("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	return c.URL(name)
}

// URL is the connection URL of database name.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// Stop stops the server (fast shutdown) and keeps the data directory; Start
// brings it back on the same port. Tests use it to take the database away
// from hqd.
func (c *Cluster) Stop() error {
	return c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop")
}

// Start starts a stopped server again.
func (c *Cluster) Start() error {
	return c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60", "start")
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func findBin() (string, error) {
	for _, d := range binDirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server programs (initdb) under /usr/lib/postgresql/*/bin or on PATH: " +
		"run build/install-tools.sh (as root on Debian: apt-get install postgresql)")
}

func start() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root and no unprivileged user nobody to own the cluster: %w", err)
		}
		c.uid, _ = strconv.Atoi(u.Uid)
		c.gid, _ = strconv.Atoi(u.Gid)
		c.user = u.Username
	}
	c.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	if c.uid >= 0 {
		if err := os.Chown(c.dir, c.uid, c.gid); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nmax_connections = 200\n"+
		"fsync = on\nshared_buffers = 64MB\nlog_min_messages = warning\n", c.port, c.dir)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	f.Close()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	// Wait until it takes connections.
	db, err := sql.Open("pgx", c.URL("postgres"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if err = db.PingContext(ctx); err == nil {
			return c, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("postgres did not answer: %w", err)
}

func (c *Cluster) stop() {
	_ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

// run runs one of the server programs, as the cluster's owner.
func (c *Cluster) run(prog string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir
	if c.uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid), NoSetGroups: true}}
		cmd.Env = append(os.Environ(), "HOME="+c.dir, "USER="+c.user)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", prog, strings.Join(args, " "), err, out)
	}
	return nil
}

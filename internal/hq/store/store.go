// Package store is HQ's database: terminals, activation codes, commands and
// their acks, jobs, operators, HQ keys and the audit trail, through
// database/sql on SQLite (modernc.org/sqlite, the embedded default) or
// PostgreSQL (pgx, for fleets and several hqd instances). One schema, kept
// in versioned goose migrations per dialect (migrations/sqlite,
// migrations/postgres, same version numbers), runs at Open.
//
// Every query is written once with $N placeholders, which both drivers
// take. What differs between the two is named where it is used: row locks
// (PostgreSQL's FOR UPDATE SKIP LOCKED; SQLite has one writer and every
// transaction here begins IMMEDIATE, so a read inside it already holds the
// write lock) and the column types of the migrations.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

//go:embed migrations
var migrations embed.FS

// Dialect is the database behind a Store.
type Dialect string

// The two dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Store is the HQ database.
type Store struct {
	db      *sql.DB
	dialect Dialect
	log     *slog.Logger
	// writer is SQLite's one write slot, taken by InTx before BEGIN
	// IMMEDIATE: writers of this process queue here and start the moment
	// the previous one commits, instead of sleeping in SQLite's busy
	// handler (1, 2, 5, 10 … 100 ms steps), which made the tail of every
	// write under load. nil on PostgreSQL (row locks, many writers).
	writer chan struct{}
	// stop ends the SQLite checkpointer; done is closed when it has.
	stop context.CancelFunc
	done chan struct{}
}

// ParseURL splits a db setting: "sqlite:///abs/path.db", "sqlite://rel.db"
// or "postgres://user@host/db?…" (also "postgresql://"). It returns the
// dialect and the driver's data source name.
func ParseURL(raw string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		path := strings.TrimPrefix(raw, "sqlite://")
		path, query, _ := strings.Cut(path, "?")
		if path == "" {
			return "", "", fmt.Errorf("db %q: sqlite:// needs a file path, e.g. sqlite:///var/lib/hqd/hq.db", raw)
		}
		if query != "" {
			return "", "", fmt.Errorf("db %q: sqlite:// takes no options (hqd sets WAL, busy timeout and immediate transactions)", raw)
		}
		// WAL lets readers (the API) run beside the one writer; the busy
		// timeout makes a second writer wait instead of failing at once;
		// _txlock=immediate takes the write lock at BEGIN, so a
		// read-then-write transaction never fails half-way on a lock
		// upgrade (SQLite's BEGIN IMMEDIATE).
		// wal_autocheckpoint(0): the commit that crosses the WAL's
		// threshold does not copy the WAL into the database and fsync it
		// on the caller's time (the tail of job creation); a goroutine
		// of the Store checkpoints in the background (checkpointer).
		dsn := "file:" + filepath.Clean(path) +
			"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)" +
			"&_pragma=wal_autocheckpoint(0)&_txlock=immediate"
		return SQLite, dsn, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", fmt.Errorf("db: %w", err)
		}
		return Postgres, raw, nil
	}
	return "", "", fmt.Errorf("db %q: want sqlite:///path/to/hq.db or postgres://…", redact(raw))
}

// redact hides a password in a database URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Open connects to the database named by dbURL and brings its schema up to
// date. Several hqd instances may call it at once on one PostgreSQL: the
// migrations run under a session advisory lock.
func Open(ctx context.Context, dbURL string, log *slog.Logger) (*Store, error) {
	dialect, dsn, err := ParseURL(dbURL)
	if err != nil {
		return nil, err
	}
	driver := map[Dialect]string{SQLite: "sqlite", Postgres: "pgx"}[dialect]
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", redact(dbURL), err)
	}
	switch dialect {
	case SQLite:
		// One writer at a time anyway; a few connections let reads run
		// beside it under WAL.
		db.SetMaxOpenConns(4)
	case Postgres:
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db, dialect: dialect, log: log}
	if dialect == SQLite {
		s.writer = make(chan struct{}, 1)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if dialect == SQLite {
		cctx, stop := context.WithCancel(context.Background())
		s.stop, s.done = stop, make(chan struct{})
		go s.checkpointer(cctx, time.Second)
	}
	return s, nil
}

// checkpointer copies SQLite's WAL into the database every interval with
// a PASSIVE checkpoint, which waits for no reader or writer: writers keep
// appending to the WAL meanwhile, and no commit pays for a checkpoint.
func (s *Store) checkpointer(ctx context.Context, every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && ctx.Err() == nil {
			s.log.Warn("sqlite: WAL checkpoint failed; retrying", "err", err)
		}
	}
}

func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	gd := goose.DialectSQLite3
	if s.dialect == Postgres {
		gd = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s schema: %w", s.dialect, err)
	}
	for _, r := range res {
		s.log.Info("schema migrated", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	return s.db.Close()
}

// Dialect names the database behind s.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB is the underlying handle, for tests and benchmarks.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers (the health check).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

// skipLocked is appended to a SELECT whose rows a transaction is about to
// claim: on PostgreSQL rows another instance holds are skipped, not waited
// for; SQLite has a single writer, and an IMMEDIATE transaction already
// excludes every other.
func (s *Store) skipLocked() string {
	if s.dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// forUpdate locks the rows read for the rest of the transaction
// (PostgreSQL); see skipLocked for SQLite.
func (s *Store) forUpdate() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx is one database transaction.
type Tx struct {
	tx *sql.Tx
	s  *Store
}

// InTx runs fn in a transaction and commits it when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	if s.writer != nil {
		select {
		case s.writer <- struct{}{}:
			defer func() { <-s.writer }()
		case <-ctx.Done():
			return fmt.Errorf("begin: %w", ctx.Err())
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&Tx{tx: tx, s: s}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ms is the stored form of a time: unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS turns a stored time back into a time.Time (UTC); 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

func optMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}

// isUniqueViolation reports a unique-constraint failure on either driver.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || // SQLite
		strings.Contains(msg, "SQLSTATE 23505") // PostgreSQL unique_violation
}

package web

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/posagent/posagent/internal/hq/store"
)

//go:embed migrations
var migrations embed.FS

// schemaTable is the goose version table of the back office's migrations,
// kept apart from hqd's core schema.
const schemaTable = "backoffice_schema_version"

// migrate brings the back office's tables up to date (after hqd's own:
// they refer to operators). Several instances may start at once on one
// PostgreSQL: goose runs under a session advisory lock of its own id.
func migrate(ctx context.Context, st *store.Store, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations/"+string(st.Dialect()))
	if err != nil {
		return fmt.Errorf("back office migrations: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true), goose.WithTableName(schemaTable)}
	gd := goose.DialectSQLite3
	if st.Dialect() == store.Postgres {
		gd = goose.DialectPostgres
		// A lock id of its own: hqd's core migrations use goose's default.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(5887940537704921959))
		if err != nil {
			return fmt.Errorf("back office migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, st.DB(), sub, opts...)
	if err != nil {
		return fmt.Errorf("back office migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate the back office schema: %w", err)
	}
	for _, r := range res {
		log.Info("back office schema migrated", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return nil
}

// keyProposal is a key an operator made in their browser, waiting for an
// admin.
type keyProposal struct {
	OperatorID int64
	Operator   string
	Pub        []byte
	ProposedAt time.Time
	Source     string
}

func (s *Server) proposeKey(ctx context.Context, operatorID int64, pub []byte, src string, now time.Time) error {
	_, err := s.st.DB().ExecContext(ctx, `INSERT INTO bo_key_proposals (operator_id, pub, proposed_at, source) VALUES ($1, $2, $3, $4)
		ON CONFLICT (operator_id) DO UPDATE SET pub = excluded.pub, proposed_at = excluded.proposed_at, source = excluded.source`,
		operatorID, pub, now.UnixMilli(), src)
	if err != nil {
		return fmt.Errorf("key proposal: %w", err)
	}
	return nil
}

func (s *Server) keyProposals(ctx context.Context) ([]keyProposal, error) {
	rows, err := s.st.DB().QueryContext(ctx, `SELECT p.operator_id, o.name, p.pub, p.proposed_at, p.source
		FROM bo_key_proposals p JOIN operators o ON o.id = p.operator_id ORDER BY p.proposed_at`)
	if err != nil {
		return nil, fmt.Errorf("key proposals: %w", err)
	}
	defer rows.Close()
	var out []keyProposal
	for rows.Next() {
		var k keyProposal
		var at int64
		if err := rows.Scan(&k.OperatorID, &k.Operator, &k.Pub, &at, &k.Source); err != nil {
			return nil, err
		}
		k.ProposedAt = time.UnixMilli(at).UTC()
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Server) keyProposalOf(ctx context.Context, operatorID int64) (*keyProposal, error) {
	var k keyProposal
	var at int64
	err := s.st.DB().QueryRowContext(ctx, "SELECT operator_id, pub, proposed_at, source FROM bo_key_proposals WHERE operator_id = $1", operatorID).
		Scan(&k.OperatorID, &k.Pub, &at, &k.Source)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key proposal: %w", err)
	}
	k.ProposedAt = time.UnixMilli(at).UTC()
	return &k, nil
}

func (s *Server) dropProposal(ctx context.Context, operatorID int64) error {
	if _, err := s.st.DB().ExecContext(ctx, "DELETE FROM bo_key_proposals WHERE operator_id = $1", operatorID); err != nil {
		return fmt.Errorf("key proposal: %w", err)
	}
	return nil
}

-- +goose Up
-- The back office's own tables, versioned apart from hqd's core schema
-- (goose table backoffice_schema_version) so the two evolve without
-- clashing version numbers. migrations/sqlite holds the same in
-- SQLite's dialect. Times are unix milliseconds (UTC).

-- A signing key an operator made in their browser and handed in, waiting
-- for an admin to register it (one per operator: a newer one replaces it).
CREATE TABLE bo_key_proposals (
    operator_id  BIGINT PRIMARY KEY REFERENCES operators (id),
    pub          BYTEA NOT NULL,
    proposed_at  BIGINT NOT NULL,
    source       TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE bo_key_proposals;

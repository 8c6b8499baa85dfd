-- +goose Up
-- The HQ schema (SQLite). migrations/postgres holds the same schema in
-- PostgreSQL's dialect under the same version numbers; a test pins that both
-- directories list the same versions. Times are unix milliseconds (UTC).

CREATE TABLE terminals (
    serial           TEXT PRIMARY KEY,
    ed25519_pub      BLOB NOT NULL,
    x25519_pub       BLOB,
    state            TEXT NOT NULL DEFAULT 'unknown',
    online           INTEGER NOT NULL DEFAULT 0,
    tid              TEXT NOT NULL DEFAULT '',
    mid              TEXT NOT NULL DEFAULT '',
    merchant_name    TEXT NOT NULL DEFAULT '',
    batch_no         TEXT NOT NULL DEFAULT '',
    batch_count      INTEGER NOT NULL DEFAULT 0,
    version          TEXT NOT NULL DEFAULT '',
    clock            TEXT NOT NULL DEFAULT '',
    pending_reversal INTEGER NOT NULL DEFAULT 0,
    disk_free_kib    BIGINT NOT NULL DEFAULT 0,
    status_at        BIGINT NOT NULL DEFAULT 0,
    status_json      TEXT NOT NULL DEFAULT '',
    last_event       TEXT NOT NULL DEFAULT '',
    last_seen        BIGINT NOT NULL DEFAULT 0,
    registered_at    BIGINT NOT NULL
);
CREATE INDEX terminals_state ON terminals (state, serial);
CREATE INDEX terminals_tid ON terminals (tid);
CREATE INDEX terminals_mid ON terminals (mid);

CREATE TABLE activation_codes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    code           TEXT NOT NULL,
    serial         TEXT NOT NULL,
    tid            TEXT NOT NULL,
    mid            TEXT NOT NULL,
    merchant_name  TEXT NOT NULL DEFAULT '',
    acquirer_addr  TEXT NOT NULL,
    acquirer_tls   INTEGER NOT NULL DEFAULT 0,
    acquirer_tpdu  TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    issued_by      TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    used_at        BIGINT,
    activation_id  TEXT,
    provision_id   TEXT,
    provision_env  BLOB
);
-- One pending code per serial, and a pending code value is unique fleet-wide.
CREATE UNIQUE INDEX activation_codes_pending_serial ON activation_codes (serial) WHERE status = 'pending';
CREATE UNIQUE INDEX activation_codes_pending_code ON activation_codes (code) WHERE status = 'pending';
CREATE INDEX activation_codes_serial ON activation_codes (serial, id);
CREATE INDEX activation_codes_code ON activation_codes (code);

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    args          TEXT NOT NULL,
    state         TEXT NOT NULL,
    signing       TEXT NOT NULL,
    required_sigs INTEGER NOT NULL DEFAULT 1,
    rate_per_min  INTEGER NOT NULL,
    max_inflight  INTEGER NOT NULL,
    abort_pct     INTEGER NOT NULL,
    abort_min     INTEGER NOT NULL,
    command_ttl_ms BIGINT NOT NULL,
    total         INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    note          TEXT NOT NULL DEFAULT '',
    next_send_at  BIGINT NOT NULL DEFAULT 0,
    lease_owner   TEXT NOT NULL DEFAULT '',
    lease_until   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs (state, created_at);

CREATE TABLE commands (
    id            TEXT PRIMARY KEY,
    serial        TEXT NOT NULL,
    type          TEXT NOT NULL,
    job_id        TEXT REFERENCES jobs (id),
    payload       BLOB NOT NULL,
    envelope      BLOB,
    required_sigs INTEGER NOT NULL DEFAULT 1,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    result        TEXT NOT NULL DEFAULT '',
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    sent_at       BIGINT,
    send_count    INTEGER NOT NULL DEFAULT 0,
    next_send_at  BIGINT,
    final_at      BIGINT
);
CREATE INDEX commands_resend ON commands (next_send_at) WHERE next_send_at IS NOT NULL;
CREATE INDEX commands_serial ON commands (serial, created_at);
CREATE INDEX commands_job ON commands (job_id, state);

CREATE TABLE command_signatures (
    cmd_id      TEXT NOT NULL REFERENCES commands (id),
    kid         TEXT NOT NULL,
    sig         BLOB NOT NULL,
    operator    TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (cmd_id, kid)
);

CREATE TABLE command_acks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cmd_id      TEXT NOT NULL,
    serial      TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    at          BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    env_sha256  BLOB NOT NULL,
    envelope    BLOB NOT NULL
);
CREATE UNIQUE INDEX command_acks_dedup ON command_acks (cmd_id, env_sha256);

CREATE TABLE job_items (
    job_id     TEXT NOT NULL REFERENCES jobs (id),
    serial     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    cmd_id     TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, serial)
);
CREATE INDEX job_items_next ON job_items (job_id, state, seq);

CREATE TABLE events (
    serial      TEXT NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    envelope    BLOB NOT NULL,
    PRIMARY KEY (serial, id)
);

CREATE TABLE rejects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    topic       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    size        INTEGER NOT NULL
);
CREATE INDEX rejects_reason ON rejects (reason);

CREATE TABLE operators (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    roles          TEXT NOT NULL,
    password_hash  TEXT NOT NULL DEFAULT '',
    locale         TEXT NOT NULL DEFAULT 'en',
    disabled       INTEGER NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    token_sha256 BLOB PRIMARY KEY,
    operator_id  BIGINT NOT NULL REFERENCES operators (id),
    name         TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_sha256    BLOB PRIMARY KEY,
    operator_id  BIGINT NOT NULL REFERENCES operators (id),
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    remote_addr  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE hq_keys (
    kid         TEXT PRIMARY KEY,
    pub         BLOB NOT NULL,
    role        TEXT NOT NULL,
    operator_id BIGINT REFERENCES operators (id),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    source  TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);

-- The audit trail is append-only: the database refuses to change or remove a row.
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit trail is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit trail is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit;
DROP TABLE hq_keys;
DROP TABLE sessions;
DROP TABLE api_tokens;
DROP TABLE operators;
DROP TABLE rejects;
DROP TABLE events;
DROP TABLE job_items;
DROP TABLE command_acks;
DROP TABLE command_signatures;
DROP TABLE commands;
DROP TABLE jobs;
DROP TABLE activation_codes;
DROP TABLE terminals;

-- Hookrunner initial schema. Immutable once landed: change the schema in a new file.
-- Timestamps are ISO 8601 UTC text ("2026-01-31T12:00:00.000000Z"), which sorts as time.
-- Ids are TEXT. No BEGIN/COMMIT here: the runner wraps each file in one transaction.

CREATE TABLE triggers (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    document    TEXT NOT NULL,          -- the validated trigger document as JSON (secrets included)
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- One row per webhook request that passed authentication, whatever became of it.
-- trigger is plain text (no foreign key) so history outlives a deleted trigger.
CREATE TABLE deliveries (
    id            TEXT PRIMARY KEY,
    trigger       TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    request_id    TEXT,
    outcome       TEXT NOT NULL,        -- accepted | duplicate | ignored
    reason        TEXT,                 -- e.g. filter_mismatch
    dedup_key     TEXT,
    execution_id  TEXT,                 -- the execution started, or the original one for a duplicate
    replay_of     TEXT REFERENCES deliveries (id) ON DELETE SET NULL,
    method        TEXT NOT NULL,
    content_type  TEXT,
    query         TEXT NOT NULL,        -- JSON object
    headers       TEXT NOT NULL,        -- JSON object, credentials redacted
    body          BLOB NOT NULL,        -- the raw bytes as received
    body_size     INTEGER NOT NULL,
    report        TEXT NOT NULL         -- JSON: stage timings, filter trace, dedup decision
);
CREATE INDEX deliveries_trigger_received ON deliveries (trigger, received_at);
CREATE INDEX deliveries_received ON deliveries (received_at);

-- The executions table is the durable queue (see app/services for the lifecycle).
CREATE TABLE executions (
    id            TEXT PRIMARY KEY,
    trigger       TEXT NOT NULL,
    delivery_id   TEXT REFERENCES deliveries (id) ON DELETE SET NULL,
    request_id    TEXT,
    status        TEXT NOT NULL,        -- queued | running | succeeded | failed | timed_out | cancelled | interrupted
    attempt       INTEGER NOT NULL DEFAULT 1,
    retry_of      TEXT,                 -- first execution of a retry chain
    rerun_of      TEXT,                 -- execution this one re-runs by operator request
    created_at    TEXT NOT NULL,
    run_after     TEXT,                 -- not before this time (retry backoff); NULL = at once
    started_at    TEXT,
    finished_at   TEXT,
    owner         TEXT,                 -- lease: worker running it
    heartbeat_at  TEXT,                 -- lease: last renewal
    exit_code     INTEGER,
    error         TEXT,
    output_bytes  INTEGER NOT NULL DEFAULT 0,
    report        TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;                        -- the id index is the table: one b-tree less per insert
CREATE INDEX executions_status_run_after ON executions (status, run_after);
CREATE INDEX executions_trigger_status ON executions (trigger, status, created_at);
CREATE INDEX executions_created ON executions (created_at);

CREATE TABLE execution_logs (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    ts           TEXT NOT NULL,
    stream       TEXT NOT NULL,         -- stdout | stderr | system
    line         TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE admin_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,  -- only the hash is kept; the token is shown once
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

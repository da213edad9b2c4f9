-- Metrics read from the store, so every worker reports the same figures.

-- How long a finished execution ran (started_at -> finished_at), for histograms.
-- Finished executions are found by status_changed_at (equal to finished_at once final).
ALTER TABLE executions ADD COLUMN duration_ms REAL;

-- Daily rollups per trigger, kept after raw rows are pruned by retention.
-- kind 'delivery': key = outcome; kind 'execution': key = final status.
-- Durations (seconds) and histogram buckets only for executions.
CREATE TABLE metrics_daily (
    day          TEXT NOT NULL,          -- YYYY-MM-DD (UTC)
    trigger      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    key          TEXT NOT NULL,
    count        INTEGER NOT NULL,
    duration_sum REAL,
    duration_min REAL,
    duration_max REAL,
    duration_p95 REAL,
    buckets      TEXT,                   -- JSON: cumulative counts per histogram bound
    rolled_at    TEXT NOT NULL,
    PRIMARY KEY (day, trigger, kind, key)
);

-- Last known state of each outbound destination's circuit breaker (any worker).
CREATE TABLE breaker_states (
    destination TEXT PRIMARY KEY,
    state       TEXT NOT NULL,           -- closed | open | half-open
    changed_at  TEXT NOT NULL,
    owner       TEXT NOT NULL
);

-- Recent refused webhook requests, so "why didn't my hook fire?" has one answer
-- (GET /admin/triggers/<name>/recent-refusals). Capped by the code that writes it:
-- a few dozen rows per trigger name and a few thousand in all. No bodies, no headers.
CREATE TABLE ingest_refusals (
    id             TEXT PRIMARY KEY,
    trigger        TEXT NOT NULL,        -- the name in the URL (may name no trigger)
    at             TEXT NOT NULL,        -- ISO 8601 UTC
    status         INTEGER NOT NULL,     -- the HTTP status answered
    reason         TEXT NOT NULL,        -- the error code answered
    source_address TEXT,                 -- the client address as decided for allow_ips
    request_id     TEXT
);
CREATE INDEX ingest_refusals_trigger_at ON ingest_refusals (trigger, at);
CREATE INDEX ingest_refusals_at ON ingest_refusals (at);

-- Durable deduplication keys. A row claims (trigger, key) until expires_at; an
-- expired row counts as absent and may be claimed again (see app/db/dedup_keys.py).
CREATE TABLE webhook_dedup_keys (
    trigger      TEXT NOT NULL REFERENCES triggers (name) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (trigger, key)
) WITHOUT ROWID;
CREATE INDEX webhook_dedup_keys_expires ON webhook_dedup_keys (expires_at);
